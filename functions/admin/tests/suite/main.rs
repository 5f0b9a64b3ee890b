//! The admin function's tests, one binary: every route against the OpenAPI document,
//! the write routes' audit and refusals, and a write route end to end on moto.

mod common;
mod on_moto;
mod openapi;
mod writes;
