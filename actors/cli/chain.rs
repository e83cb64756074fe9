//! `connito chain metagraph|commitments|register`: what the chain sees, read through the subxt
//! client; and registering a hotkey on a local network.

use anyhow::Context as _;
use connito::chain::network::{axon_address, endpoint};
use connito::chain::subxt::SubxtClient;
use connito::chain::{ChainClient, DEFAULT_NETUID};
use connito::submission::{Commitment, SUBSTRATE_SS58_PREFIX, ss58};

use crate::cli::wallet::WalletArgs;

/// Which node, and which subnet.
#[derive(clap::Args, Debug, Clone)]
pub struct NetworkArgs {
    /// Named network: finney (mainnet), test, or local (ws://127.0.0.1:9944).
    #[arg(long, env = "CONNITO_NETWORK", conflicts_with = "chain_endpoint")]
    pub network: Option<String>,
    /// Node URL (ws:// or wss://), instead of --network.
    #[arg(long, env = "CONNITO_CHAIN_ENDPOINT")]
    pub chain_endpoint: Option<String>,
    /// Subnet (default 102; a daemon's default is its config's node.netuid).
    #[arg(long, env = "CONNITO_NETUID")]
    pub netuid: Option<u16>,
}

impl NetworkArgs {
    pub fn netuid(&self) -> u16 {
        self.netuid.unwrap_or(DEFAULT_NETUID)
    }

    pub fn url(&self) -> anyhow::Result<String> {
        Ok(endpoint(
            self.network.as_deref(),
            self.chain_endpoint.as_deref(),
        )?)
    }
}

#[derive(clap::Subcommand)]
pub enum ChainCmd {
    /// The subnet's metagraph at the newest finalized block: per uid hotkey, coldkey, stake
    /// (TAO), incentive, dividends, last_update, validator permit and axon.
    Metagraph {
        #[command(flatten)]
        net: NetworkArgs,
        /// Print JSON (one object: block and neurons).
        #[arg(long)]
        json: bool,
    },
    /// The subnet's commitments at the newest finalized block, decoded where they are
    /// connito's (`{"e","h","v","r"}`).
    Commitments {
        #[command(flatten)]
        net: NetworkArgs,
        #[arg(long)]
        json: bool,
    },
    /// Register the wallet's hotkey (burned registration) paid by a development coldkey, and
    /// stake to it: for local networks (`connito devnet`). On finney or test, register with
    /// btcli and your own coldkey.
    Register {
        #[command(flatten)]
        net: NetworkArgs,
        #[command(flatten)]
        wallet: WalletArgs,
        /// Development coldkey that pays and owns the hotkey (//Alice ... //Ferdie).
        #[arg(long, default_value = "//Alice")]
        dev_coldkey: String,
        /// TAO to stake to the hotkey after registering (0: none).
        #[arg(long, default_value_t = 0.0)]
        stake: f64,
    },
}

fn addr(k: &[u8; 32]) -> String {
    ss58(k, SUBSTRATE_SS58_PREFIX)
}

pub async fn run(cmd: ChainCmd) -> anyhow::Result<()> {
    match cmd {
        ChainCmd::Metagraph { net, json } => metagraph(&net, json).await,
        ChainCmd::Commitments { net, json } => commitments(&net, json).await,
        ChainCmd::Register {
            net,
            wallet,
            dev_coldkey,
            stake,
        } => register(&net, &wallet, &dev_coldkey, stake).await,
    }
}

/// A client for the chosen node and its newest finalized block.
async fn connect(net: &NetworkArgs) -> anyhow::Result<(SubxtClient, connito::chain::BlockInfo)> {
    let url = net.url()?;
    let client = SubxtClient::new(&url);
    let at = client
        .finalized_block()
        .await
        .with_context(|| connito::chain::network::redact(&url))?;
    Ok((client, at))
}

async fn metagraph(net: &NetworkArgs, json: bool) -> anyhow::Result<()> {
    let (client, at) = connect(net).await?;
    let mg = client.metagraph(net.netuid(), &at).await?;
    let rows: Vec<serde_json::Value> = mg
        .iter()
        .map(|n| {
            serde_json::json!({
                "uid": n.uid,
                "hotkey": addr(&n.hotkey),
                "coldkey": n.coldkey.as_ref().map(addr),
                "stake": n.stake,
                "incentive": n.incentive,
                "dividends": n.dividends,
                "last_update": n.last_update,
                "validator_permit": n.validator_permit,
                "axon": n.axon.as_ref().map(axon_address),
            })
        })
        .collect();
    if json {
        let out = serde_json::json!({"netuid": net.netuid(), "block": at.number, "neurons": rows});
        println!("{out}");
        return Ok(());
    }
    println!("netuid {} at block {}", net.netuid(), at.number);
    println!(
        "{:>4}  {:<48}  {:>12}  {:>9}  {:>9}  {:>8}  {:>6}  axon",
        "uid", "hotkey", "stake", "incentive", "dividends", "updated", "permit"
    );
    for n in &mg {
        println!(
            "{:>4}  {:<48}  {:>12.3}  {:>9.5}  {:>9.5}  {:>8}  {:>6}  {}",
            n.uid,
            addr(&n.hotkey),
            n.stake,
            n.incentive,
            n.dividends,
            n.last_update,
            n.validator_permit,
            n.axon.as_ref().map(axon_address).unwrap_or_default()
        );
    }
    Ok(())
}

async fn commitments(net: &NetworkArgs, json: bool) -> anyhow::Result<()> {
    let (client, at) = connect(net).await?;
    let all = client.commitments(net.netuid(), &at).await?;
    let rows: Vec<serde_json::Value> = all
        .iter()
        .map(|r| {
            let decoded = Commitment::from_bytes(&r.data).ok().map(|c| {
                serde_json::json!({
                    "group": c.group(),
                    "hash": hex::encode(c.hash()),
                    "version": c.version(),
                    "url": c.url(),
                })
            });
            serde_json::json!({
                "uid": r.uid,
                "hotkey": addr(&r.hotkey),
                "block": r.block,
                "data": String::from_utf8_lossy(&r.data),
                "commitment": decoded,
            })
        })
        .collect();
    if json {
        let out =
            serde_json::json!({"netuid": net.netuid(), "block": at.number, "commitments": rows});
        println!("{out}");
    } else {
        for r in rows {
            println!("{r}");
        }
    }
    Ok(())
}

async fn register(
    net: &NetworkArgs,
    wallet: &WalletArgs,
    dev_coldkey: &str,
    stake: f64,
) -> anyhow::Result<()> {
    let url = net.url()?;
    let coldkey = connito::wallet::dev_key(dev_coldkey)?;
    let hotkey = wallet.load()?;
    let client = SubxtClient::new(&url);
    match client
        .burned_register(&coldkey, net.netuid(), &hotkey.public())
        .await
    {
        Ok(inc) => eprintln!("registered {} at block {}", hotkey.address(), inc.block),
        Err(connito::chain::ChainError::HotKeyAlreadyRegisteredInSubNet) => {
            eprintln!("{} is already registered", hotkey.address())
        }
        Err(e) => return Err(e).context("burned_register"),
    }
    if stake > 0.0 {
        let rao = (stake * 1e9).round() as u64;
        let inc = client
            .add_stake(&coldkey, &hotkey.public(), net.netuid(), rao)
            .await
            .context("add_stake")?;
        eprintln!("staked {stake} TAO at block {}", inc.block);
    }
    Ok(())
}
