//! Mock GitHub and the demo upstream app.
//!
//! Used by `gatehouse demo`, `gatehouse mock-github` and the integration tests.
//! The mock is deliberately as strict as the real GitHub (README.md, "Mock GitHub for your own
//! CI"; the rules themselves are in `validate`), so a test that passes against it is not
//! passing against a lie.
//!
//! Modules here refer to each other only through `super::`, because this directory is
//! also compiled as a module of other crates (a scratch crate during development).

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
mod state;
mod token;
mod validate;

pub use github::{MockApp, MockError, MockGithub};
pub use upstream::serve_demo_upstream;
