//! Signing, submitting and following a transaction to its block; the coldkey operations
//! (registration, stake, transfer) that are not on the daemon's trait.

use subxt::error::{BackendError, ExtrinsicError, RpcError, TransactionEventsError};
use subxt::tx::{Payload, TransactionStatus};

use super::*;

/// `Commitments.set_commitment(netuid, { fields: [Raw{n}(data)] })`; at most 128 bytes, as the
/// `Data` type's largest raw variant holds.
pub(super) fn set_commitment(
    netuid: u16,
    data: &[u8],
) -> Result<subxt::tx::DynamicPayload<Vec<Value>>, ChainError> {
    if data.len() > 128 {
        return Err(ChainError::CommitmentTooLarge {
            len: data.len(),
            max: 128,
        });
    }
    let raw = Value::unnamed_variant(format!("Raw{}", data.len()), [Value::from_bytes(data)]);
    let info = Value::named_composite([("fields", Value::unnamed_composite([raw]))]);
    Ok(subxt::dynamic::tx(
        "Commitments",
        "set_commitment",
        vec![Value::u128(u128::from(netuid)), info],
    ))
}

/// What the node said when the transaction was handed over.
enum Refusal {
    /// Another transaction took this nonce (stale, or the same nonce already pooled): refetch.
    NonceTaken,
    Final(ChainError),
}

fn refusal(e: ExtrinsicError) -> Result<Refusal, ChainError> {
    let ExtrinsicError::ErrorSubmittingTransaction(BackendError::Rpc(RpcError::ClientError(
        subxt::rpcs::Error::User(u),
    ))) = e
    else {
        // The node may have received it before the connection failed.
        return Err(ChainError::OutcomeUnknown(e.to_string()));
    };
    let data = u
        .data
        .as_ref()
        .map(|d| d.get().to_string())
        .unwrap_or_default();
    let nonce_taken = (u.code == 1010 && data.contains("outdated")) || u.code == 1014;
    Ok(if nonce_taken {
        Refusal::NonceTaken
    } else {
        let message = if data.is_empty() {
            u.message
        } else {
            format!("{}: {}", u.message, data.trim_matches('"'))
        };
        Refusal::Final(ChainError::Invalid {
            code: i64::from(u.code),
            message,
        })
    })
}

fn dispatch_error(e: &subxt::error::DispatchError) -> ChainError {
    match e {
        subxt::error::DispatchError::Module(m) => match m.details() {
            Ok(d) => error_from_module(d.pallet.name(), &d.variant.name),
            Err(_) => ChainError::Module {
                pallet: format!("#{}", m.pallet_index()),
                error: format!("#{}", m.error_index()),
            },
        },
        other => ChainError::Module {
            pallet: "System".into(),
            error: format!("{other:?}"),
        },
    }
}

impl SubxtClient {
    /// The nonce to sign with: the larger of the node's (pool included) and this process's next.
    async fn next_nonce(&self, c: &Conn, who: &[u8; 32], refetch: bool) -> Result<u64, ChainError> {
        let mut nonces = self.nonces.lock().await;
        let from_node: u64 = c
            .rpc
            .request(
                "system_accountNextIndex",
                subxt::rpcs::rpc_params![AccountId32(*who).to_string()],
            )
            .await
            .map_err(conn_err)?;
        let local = if refetch {
            0
        } else {
            nonces.get(who).copied().unwrap_or(0)
        };
        let n = from_node.max(local);
        nonces.insert(*who, n + 1);
        Ok(n)
    }

    /// Signs `call` with `signer`, submits it and follows it to a block. After any failure the
    /// local nonce is forgotten, so the next submission takes the node's count (a nonce handed
    /// out to a transaction that never reached the pool must not leave a gap).
    pub(super) async fn submit<P: Payload + Send + Sync>(
        &self,
        signer: &Hotkey,
        call: P,
    ) -> Result<Included, ChainError> {
        let res = self.submit_once(signer, call).await;
        if res.is_err() {
            self.nonces.lock().await.remove(&signer.public());
        }
        res
    }

    async fn submit_once<P: Payload + Send + Sync>(
        &self,
        signer: &Hotkey,
        call: P,
    ) -> Result<Included, ChainError> {
        let c = self.conn().await?;
        let head = self.finalized_block().await?;
        let at = c
            .client
            .at_block_hash_and_number(H256(head.hash), head.number)
            .await
            .map_err(conn_err)?;
        let who = signer.public();
        let mut refetch = false;
        for _ in 0..3 {
            let nonce = self.next_nonce(&c, &who, refetch).await?;
            let signed = at
                .tx()
                .create_signable_offline(&call, ext_params(nonce, &head))
                .map_err(|e| ChainError::Decode(format!("encoding the call: {e}")))?
                .sign(&Signer(signer))
                .map_err(|e| ChainError::Decode(format!("signing: {e}")))?;
            match signed.submit_and_watch().await {
                Ok(progress) => return self.follow(progress).await,
                Err(e) => match refusal(e) {
                    Ok(Refusal::NonceTaken) => refetch = true,
                    Ok(Refusal::Final(e)) => return Err(e),
                    Err(unknown) => {
                        c.alive.store(false, std::sync::atomic::Ordering::SeqCst);
                        return Err(unknown);
                    }
                },
            }
        }
        Err(ChainError::Invalid {
            code: 1014,
            message: "the nonce was taken three times in a row".into(),
        })
    }

    async fn follow<C>(
        &self,
        mut progress: subxt::tx::TransactionProgress<Subtensor, C>,
    ) -> Result<Included, ChainError>
    where
        C: subxt::client::OnlineClientAtBlockT<Subtensor>,
    {
        let deadline = tokio::time::Instant::now() + self.inclusion_timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, progress.next())
                .await
                .map_err(|_| ChainError::OutcomeUnknown("no block included it in time".into()))?;
            let status = match next {
                None => return Err(ChainError::OutcomeUnknown("the status stream ended".into())),
                Some(Err(e)) => return Err(ChainError::OutcomeUnknown(e.to_string())),
                Some(Ok(s)) => s,
            };
            match status {
                TransactionStatus::InBestBlock(b) | TransactionStatus::InFinalizedBlock(b) => {
                    let number = b
                        .at()
                        .await
                        .map_err(|e| ChainError::OutcomeUnknown(e.to_string()))?
                        .block_number();
                    return match b.wait_for_success().await {
                        Ok(_) => Ok(Included { block: number }),
                        Err(TransactionEventsError::ExtrinsicFailed(de)) => {
                            Err(dispatch_error(&de))
                        }
                        Err(e) => Err(ChainError::OutcomeUnknown(e.to_string())),
                    };
                }
                // Left this node's pool after it was accepted (invalidated, usurped, dropped): it
                // may still have reached other nodes, so its fate is for the chain to tell.
                TransactionStatus::Invalid { message }
                | TransactionStatus::Error { message }
                | TransactionStatus::Dropped { message } => {
                    return Err(ChainError::OutcomeUnknown(format!(
                        "left the pool: {message}"
                    )));
                }
                _ => {}
            }
        }
    }

    /// `burned_register(netuid, hotkey)`, signed by the coldkey that will own `hotkey`.
    pub async fn burned_register(
        &self,
        coldkey: &Hotkey,
        netuid: u16,
        hotkey: &[u8; 32],
    ) -> Result<Included, ChainError> {
        let call = subxt::dynamic::tx(
            "SubtensorModule",
            "burned_register",
            (netuid, AccountId32(*hotkey)),
        );
        self.submit(coldkey, call).await
    }

    /// `add_stake(hotkey, netuid, amount_staked)` in rao, signed by the coldkey.
    pub async fn add_stake(
        &self,
        coldkey: &Hotkey,
        hotkey: &[u8; 32],
        netuid: u16,
        rao: u64,
    ) -> Result<Included, ChainError> {
        let call = subxt::dynamic::tx(
            "SubtensorModule",
            "add_stake",
            (AccountId32(*hotkey), netuid, rao),
        );
        self.submit(coldkey, call).await
    }

    /// `Balances.transfer_keep_alive(dest, value)` in rao.
    pub async fn transfer(
        &self,
        from: &Hotkey,
        to: &[u8; 32],
        rao: u128,
    ) -> Result<Included, ChainError> {
        let dest = MultiAddress::<AccountId32, ()>::Id(AccountId32(*to));
        let call = subxt::dynamic::tx("Balances", "transfer_keep_alive", (dest, rao));
        self.submit(from, call).await
    }
}
