//! The metagraph from storage items, for a node whose runtime has no
//! `SubnetInfoRuntimeApi_get_metagraph`: per-subnet vectors (`LastUpdate`, `Incentive`, ...), the
//! `Keys` and `BlockAtRegistration` maps, and per hotkey `Owner`, `Axons` and
//! `TotalHotkeyAlpha` (three reads per uid: slower, but any Subtensor has them).

use std::collections::BTreeMap;

use subxt::dynamic::storage as item;

use super::*;

fn proportion(x: u16) -> f64 {
    f64::from(x) / f64::from(u16::MAX)
}

/// A per-subnet vector item (`Vec<T>` by netuid), empty where absent.
async fn per_net<T: subxt::ext::scale_decode::DecodeAsType>(
    block: &AtBlock,
    name: &str,
    netuid: u16,
) -> Result<Vec<T>, ChainError> {
    let found = block
        .storage()
        .try_fetch(item::<(u16,), Vec<T>>("SubtensorModule", name), (netuid,))
        .await
        .map_err(read_err)?;
    match found {
        Some(v) => v.decode().map_err(read_err),
        None => Ok(vec![]),
    }
}

/// A `(netuid, uid) -> T` map, by uid.
async fn per_uid<T: subxt::ext::scale_decode::DecodeAsType>(
    block: &AtBlock,
    name: &str,
    netuid: u16,
) -> Result<BTreeMap<u16, T>, ChainError> {
    let storage = block.storage();
    let addr = item::<(u16, u16), T>("SubtensorModule", name);
    let mut it = storage.iter(&addr, (netuid,)).await.map_err(read_err)?;
    let mut out = BTreeMap::new();
    while let Some(kv) = it.next().await {
        let kv = kv.map_err(read_err)?;
        let (_, uid): (u16, u16) = kv.key().map_err(read_err)?.decode().map_err(read_err)?;
        out.insert(uid, kv.value().decode().map_err(read_err)?);
    }
    Ok(out)
}

/// What one hotkey's own items say: coldkey, axon, stake (rao).
async fn of_hotkey(
    block: &AtBlock,
    netuid: u16,
    hotkey: [u8; 32],
) -> Result<([u8; 32], Option<Axon>, u64), ChainError> {
    let s = block.storage();
    let who = AccountId32(hotkey);
    let owner: AccountId32 = s
        .fetch(
            item::<(AccountId32,), AccountId32>("SubtensorModule", "Owner"),
            (who,),
        )
        .await
        .map_err(read_err)?
        .decode()
        .map_err(read_err)?;
    let axon = s
        .try_fetch(
            item::<(u16, AccountId32), Value>("SubtensorModule", "Axons"),
            (netuid, who),
        )
        .await
        .map_err(read_err)?
        .map(|v| v.decode())
        .transpose()
        .map_err(read_err)?
        .and_then(|v: Value| decode::axon(&v));
    let stake: u64 = s
        .fetch(
            item::<(AccountId32, u16), u64>("SubtensorModule", "TotalHotkeyAlpha"),
            (who, netuid),
        )
        .await
        .map_err(read_err)?
        .decode()
        .map_err(read_err)?;
    Ok((owner.0, axon.filter(|a| a.ip != 0), stake))
}

/// The metagraph of `netuid` from storage at `block`.
pub(super) async fn metagraph(block: &AtBlock, netuid: u16) -> Result<Vec<NeuronInfo>, ChainError> {
    let added: bool = block
        .storage()
        .fetch(
            item::<(u16,), bool>("SubtensorModule", "NetworksAdded"),
            (netuid,),
        )
        .await
        .map_err(read_err)?
        .decode()
        .map_err(read_err)?;
    if !added {
        return Err(ChainError::SubnetworkDoesNotExist(netuid));
    }
    let keys: BTreeMap<u16, AccountId32> = per_uid(block, "Keys", netuid).await?;
    let registered: BTreeMap<u16, u64> = per_uid(block, "BlockAtRegistration", netuid).await?;
    let last: Vec<u64> = per_net(block, "LastUpdate", netuid).await?;
    let inc: Vec<u16> = per_net(block, "Incentive", netuid).await?;
    let div: Vec<u16> = per_net(block, "Dividends", netuid).await?;
    let cons: Vec<u16> = per_net(block, "Consensus", netuid).await?;
    let vtrust: Vec<u16> = per_net(block, "ValidatorTrust", netuid).await?;
    let permit: Vec<bool> = per_net(block, "ValidatorPermit", netuid).await?;
    let active: Vec<bool> = per_net(block, "Active", netuid).await?;
    let emission: Vec<u64> = per_net(block, "Emission", netuid).await?;
    let at = |v: &[u16], i: usize| v.get(i).copied().map_or(0.0, proportion);
    let mut out = vec![];
    for (uid, hotkey) in keys {
        let i = usize::from(uid);
        let (coldkey, axon, stake) = of_hotkey(block, netuid, hotkey.0).await?;
        out.push(NeuronInfo {
            uid,
            hotkey: hotkey.0,
            stake: stake as f64 / 1e9,
            registered_at: registered.get(&uid).copied().unwrap_or(0),
            last_update: last.get(i).copied().unwrap_or(0),
            validator_permit: permit.get(i).copied().unwrap_or(false),
            active: active.get(i).copied().unwrap_or(false),
            consensus: at(&cons, i),
            incentive: at(&inc, i),
            dividends: at(&div, i),
            validator_trust: at(&vtrust, i),
            emission: emission.get(i).copied().unwrap_or(0) as f64 / 1e9,
            coldkey: Some(coldkey),
            axon,
        });
    }
    Ok(out)
}
