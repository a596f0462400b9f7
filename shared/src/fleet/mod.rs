//! The fleet's state, folded from FLEET_EVENTS, and the metrics derived from it.
//!
//! One implementation for every reader that folds events: the processor (live), and the
//! archiver (history, and the fleet as it was at a past instant). The same events from the
//! same snapshot give the same state, whoever folds them.

mod derive;
mod partition;
mod sketch;
mod state;
mod summary;
mod thin;
mod window;

pub use partition::Partition;
pub use sketch::{RELATIVE_ERROR, Sketch};
pub use state::{FleetState, Limits, Load, TaskState, TaskStatus, WorkerState};
pub use summary::{FleetSummary, GroupSummary, LoadSums, Share};
pub use thin::Thinner;
