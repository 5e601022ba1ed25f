//! Gatehouse: a reverse-proxy authentication gate on Pingora. It signs people in with GitHub,
//! keeps their session in an encrypted cookie, and forwards allowed requests to the app with
//! identity headers. See DESIGN.md for the public contract.

pub mod app;
pub mod auth;
pub mod config;
pub mod demo;
pub mod gate;
pub mod github;
pub mod identity;
pub mod mock;
pub mod pages;
pub mod policy;
pub mod reply;
pub mod session;
