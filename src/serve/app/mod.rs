//! What the server answers: TorchServe 0.12's inference endpoints (`/ping`, `/predictions`,
//! `/explanations`), its management API (`/models`), its token API and its Prometheus `/metrics`,
//! KServe V1 and the KServe V2 protocol with Triton's extensions, with TorchServe's (or KServe's)
//! status codes and error bodies.
//!
//! `route` is the routing table (every endpoint, and the credentials it needs); each API's handlers
//! are in their own module; `inference` is the prediction path they share; `errors` the error
//! answers and their mapping to statuses and gRPC codes; `state` what the application holds.

mod analyses;
mod errors;
mod explanations;
mod inference;
pub(crate) mod kserve;
mod kserve_v1;
pub(crate) mod management;
mod metrics_api;
mod route;
mod slides;
mod state;
mod token_api;
mod torchserve;
mod viewer;

pub(crate) use errors::{error, not_found, refusal, Exception, Failure};
pub(crate) use route::Route;
pub(crate) use slides::{library as slide_library, uploaded as slide_uploaded};
pub(crate) use state::{App, Defaults, Envelope, Roles};
