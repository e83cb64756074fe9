//! The validator daemon's actors: Intake (fetch and verify submissions), Evaluator
//! (Proof-of-Loss), Aggregator (merge, publish the global model), WeightSetter (weights on chain).

pub mod aggregator;
pub mod evaluator;
pub mod intake;
pub mod weight_setter;
