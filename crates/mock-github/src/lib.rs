//! Mock GitHub and the demo upstream app: a crate of its own, which the `gatehouse` binary
//! (`gatehouse demo`, `gatehouse mock-github`), the integration tests and the CLI client's tests
//! depend on; the gate library does not.
//! The mock is deliberately as strict as the real GitHub (docs/src/guides/mock-github.md;
//! the rules themselves are in `validate`), so a test that passes against it is not
//! passing against a lie.

pub mod github;
pub mod upstream;

mod api;
mod authorize;
mod control;
mod credentials;
mod data;
mod fault;
mod html;
mod pkce;
mod redirect;
mod scopes;
mod sso;
mod state;
mod token;
mod validate;

pub use github::{MockApp, MockError, MockGithub};
pub use upstream::serve_demo_upstream;
