//! The collector's tables: device and interface state (updated in place, in batches across
//! devices by [`StateWriter`]) and the sample tables (append-only, written with binary COPY by
//! [`SampleWriter`]).

pub mod lease;
pub mod query;
pub mod routing;
mod state;
pub mod topology;
pub mod trap;
mod writer;

pub use state::{StateHandle, StateOutcome, StateUpdate, StateWriter, StateWriterOptions};
pub use writer::{
    IF_TYPES, IfSampleRow, POLL_TYPES, PollSampleRow, SampleWriter, WriterHandle, WriterOptions, WriterStats,
    if_row_values, poll_row_values,
};
