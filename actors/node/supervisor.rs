//! A supervisor with a restart policy: a failed child is restarted after an exponential backoff,
//! unless it failed more than `max_restarts` times within `window`, in which case the supervisor
//! stops (and its own supervisor, or the daemon, sees it fail). Children rebuild their state
//! from sled in `pre_start`, so a restart loses nothing that was stored.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};

use crate::node::metrics::Metrics;

pub type SpawnFuture = Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>;
pub type SpawnFn = Arc<dyn Fn(ActorCell) -> SpawnFuture + Send + Sync>;

pub struct ChildSpec {
    /// Short name for logs and the `actor` metric label (`intake`, `trainer`, ...).
    pub label: &'static str,
    pub spawn: SpawnFn,
}

#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    pub max_restarts: usize,
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_restarts: 5,
            window: Duration::from_secs(60),
        }
    }
}

impl RestartPolicy {
    /// Backoff before the next restart given the restarts already in the window, or `None` when
    /// the budget is spent.
    pub fn next_backoff(&self, recent: usize) -> Option<Duration> {
        if recent >= self.max_restarts {
            return None;
        }
        let factor = 1u32 << recent.min(16);
        Some((self.base_backoff * factor).min(self.max_backoff))
    }
}

pub struct Supervisor;

pub struct SupervisorArgs {
    pub daemon: String,
    pub children: Vec<ChildSpec>,
    pub policy: RestartPolicy,
    pub metrics: Metrics,
}

struct Child {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    failures: VecDeque<Instant>,
}

pub struct SupervisorState {
    daemon: String,
    children: Vec<Child>,
    policy: RestartPolicy,
    metrics: Metrics,
}

pub enum SupervisorMsg {
    Restart(usize),
    /// Test hook (fault injection): kill the child with this label from outside; it is then
    /// restarted like any failed child, so no child's message type needs a crash variant.
    Kill(String),
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut children = Vec::with_capacity(args.children.len());
        for spec in args.children {
            // Export the restart counter from the start (0), so dashboards and alerts see it.
            args.metrics
                .counter(
                    "connito_supervisor_restarts_total",
                    &[("actor", spec.label)],
                )
                .increment(0);
            let cell = (spec.spawn)(myself.get_cell()).await?;
            children.push(Child {
                spec,
                cell: Some(cell),
                failures: VecDeque::new(),
            });
        }
        Ok(SupervisorState {
            daemon: args.daemon,
            children,
            policy: args.policy,
            metrics: args.metrics,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let i = match msg {
            SupervisorMsg::Restart(i) => i,
            SupervisorMsg::Kill(label) => {
                kill(state, &label);
                return Ok(());
            }
        };
        let child = &mut state.children[i];
        match (child.spec.spawn)(myself.get_cell()).await {
            Ok(cell) => {
                tracing::info!(daemon = %state.daemon, actor = child.spec.label, "restarted");
                state
                    .metrics
                    .counter(
                        "connito_supervisor_restarts_total",
                        &[("actor", child.spec.label)],
                    )
                    .increment(1);
                child.cell = Some(cell);
            }
            Err(e) => {
                tracing::warn!(daemon = %state.daemon, actor = child.spec.label, "restart failed: {e}");
                schedule(&myself, state, i)?;
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, format!("stopped: {}", reason.unwrap_or_default()))
            }
            _ => return Ok(()),
        };
        let Some(i) = state
            .children
            .iter()
            .position(|c| c.cell.as_ref().is_some_and(|c| c.get_id() == cell.get_id()))
        else {
            return Ok(());
        };
        tracing::warn!(daemon = %state.daemon, actor = state.children[i].spec.label, "child {why}");
        state.children[i].cell = None;
        schedule(&myself, state, i)
    }
}

/// Kills a running child by label (its supervision event then schedules the restart).
fn kill(state: &SupervisorState, label: &str) {
    match state.children.iter().find(|c| c.spec.label == label) {
        Some(Child {
            cell: Some(cell), ..
        }) => {
            tracing::warn!(daemon = %state.daemon, actor = label, "killing (fault injection)");
            cell.kill();
        }
        Some(_) => tracing::warn!(daemon = %state.daemon, actor = label, "not running; not killed"),
        None => tracing::warn!(daemon = %state.daemon, actor = label, "no such actor to kill"),
    }
}

fn schedule(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    i: usize,
) -> Result<(), ActorProcessingErr> {
    let now = Instant::now();
    let window = state.policy.window;
    let child = &mut state.children[i];
    while child
        .failures
        .front()
        .is_some_and(|t| now.duration_since(*t) > window)
    {
        child.failures.pop_front();
    }
    match state.policy.next_backoff(child.failures.len()) {
        Some(backoff) => {
            child.failures.push_back(now);
            myself.send_after(backoff, move || SupervisorMsg::Restart(i));
            Ok(())
        }
        None => Err(format!(
            "{}: {} failed {} times within {:?}; giving up",
            state.daemon,
            child.spec.label,
            child.failures.len(),
            window
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped_and_budgeted() {
        let p = RestartPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            max_restarts: 4,
            window: Duration::from_secs(1),
        };
        assert_eq!(p.next_backoff(0), Some(Duration::from_millis(100)));
        assert_eq!(p.next_backoff(1), Some(Duration::from_millis(200)));
        assert_eq!(p.next_backoff(2), Some(Duration::from_millis(350)));
        assert_eq!(p.next_backoff(4), None);
    }

    /// A child that does nothing; it counts its starts.
    struct Idle(Arc<std::sync::atomic::AtomicUsize>);

    impl Actor for Idle {
        type Msg = ();
        type State = ();
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_killed_child_is_restarted_and_counted() {
        let starts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let s2 = starts.clone();
        let spawn: SpawnFn = Arc::new(move |sup: ActorCell| {
            let s = s2.clone();
            Box::pin(async move {
                Actor::spawn_linked(None, Idle(s), (), sup)
                    .await
                    .map(|(r, _)| r.get_cell())
            })
        });
        let metrics = Metrics::new();
        let args = SupervisorArgs {
            daemon: "test".into(),
            children: vec![ChildSpec {
                label: "idle",
                spawn,
            }],
            policy: RestartPolicy {
                base_backoff: Duration::from_millis(1),
                ..RestartPolicy::default()
            },
            metrics: metrics.clone(),
        };
        let (sup, handle) = Actor::spawn(None, Supervisor, args).await.unwrap();
        sup.cast(SupervisorMsg::Kill("no-such-actor".into()))
            .unwrap();
        sup.cast(SupervisorMsg::Kill("idle".into())).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while starts.load(std::sync::atomic::Ordering::SeqCst) < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            starts.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "restarted once"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let text = metrics.render();
        assert!(
            text.contains(r#"connito_supervisor_restarts_total{actor="idle"} 1"#),
            "{text}"
        );
        sup.stop(None);
        handle.await.unwrap();
    }
}
