//! The leaf helpers every Gatehouse crate shares (the gate, the mock GitHub, the CLI client),
//! so none of them has to depend on another for a few lines: the wall clock, random tokens,
//! HTML escaping, and which characters text from outside must not carry to a terminal or a log.
//!
//! Nothing here imports anything of Gatehouse's.

pub mod clock;
pub mod html;
pub mod random;
pub mod text;
