//! Opt-in, read-only: the subxt client against a live network. Set `CONNITO_LIVE_ENDPOINT`
//! (for example `wss://entrypoint-finney.opentensor.ai:443`) and, optionally,
//! `CONNITO_LIVE_NETUID` (default 102). Without it the test says so and passes. Nothing is signed
//! or sent.

use connito::chain::ChainClient;
use connito::chain::subxt::SubxtClient;

#[test]
fn reads_a_live_subnet() {
    let Ok(url) = std::env::var("CONNITO_LIVE_ENDPOINT") else {
        eprintln!("skipped: set CONNITO_LIVE_ENDPOINT to a Subtensor node (read-only)");
        return;
    };
    let netuid: u16 = std::env::var("CONNITO_LIVE_NETUID")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(connito::chain::DEFAULT_NETUID);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = SubxtClient::new(&url);
        let at = c.finalized_block().await.expect("finalized head");
        assert!(at.number > 0);
        assert_eq!(c.block_hash(at.number).await.unwrap(), at.hash);
        let mg = c.metagraph(netuid, &at).await.expect("metagraph");
        assert!(!mg.is_empty(), "netuid {netuid} has no neurons at block {}", at.number);
        assert!(mg.iter().all(|n| n.coldkey.is_some()));
        let p = c.weights_params(netuid, &at).await.expect("hyperparameters");
        assert!(p.tempo > 0);
        let commitments = c.commitments(netuid, &at).await.expect("commitments");
        eprintln!(
            "{url}: block {}, netuid {netuid}: {} neurons, {} with a validator permit, {} commitments, \
             tempo {}, commit-reveal {}",
            at.number,
            mg.len(),
            mg.iter().filter(|n| n.validator_permit).count(),
            commitments.len(),
            p.tempo,
            p.commit_reveal_enabled
        );
    });
}
