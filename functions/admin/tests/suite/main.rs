//! The admin function's tests, one binary: every route against the OpenAPI document,
//! the configuration routes (audit before and after, refusals, key lists and their
//! rotation, pages), the write routes' audit and refusals, and a write route end to
//! end on moto.

mod common;
mod configuration;
mod on_moto;
mod openapi;
mod writes;
