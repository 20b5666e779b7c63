//! A simulated Dynamics 365 Finance & Operations metadata service, served over loopback HTTP.
//!
//! [`Dataset`] generates an environment's metadata (data entities, public entities, enumerations,
//! labels, modules) deterministically at three scales, from real metadata names; [`Simulator`]
//! serves datasets as environments speaking the wire format of WIRE.md, with paging, fault
//! injection, a request log and an Azure AD token endpoint.

pub mod dataset;
pub mod model;
mod modules_file;
mod rng;
mod server;
mod setup;

pub use dataset::{Dataset, Evolution, Labels, Scale, module_line};
pub use modules_file::load_modules_file;
pub use server::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN, EnvironmentSpec, Fault, FaultKind, RecordedRequest, SimEnv, Simulator, TestPki,
};
pub use setup::Setup;
