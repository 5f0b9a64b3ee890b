//! A customer's EventBridge bus as a target: each change put on the bus through the
//! deployment's customer-bus publisher. It has no probe: the only way to test a bus is
//! to publish to it.

use domain::{ChangeEvent, FieldProjection};

use crate::deliver::attempt::{Attempt, TargetOutcome};
use crate::deps::Engine;

/// Puts `event` on the bus `bus_arn`, in this sync's own format with the user cut to
/// the target's projection.
pub(crate) async fn send(
    engine: &Engine,
    bus_arn: &str,
    projection: Option<&FieldProjection>,
    event: &ChangeEvent,
) -> Attempt {
    let event = &crate::deliver::targets::app_webhook::native_body(event, projection);
    match &engine.foreign_bus {
        None => Attempt::failed(
            "no customer-bus publisher is configured in this deployment",
            false,
        ),
        Some(bus) => match bus.put(bus_arn, event).await {
            Ok(()) => Attempt::plain(TargetOutcome::Delivered {
                status: 200,
                version: event.version,
            }),
            Err(e) => Attempt::failed(e.to_string(), e.retryable),
        },
    }
}

/// EventBridge targets have no probe: the only test of a bus is a publish.
pub(crate) fn probe() -> crate::deliver::targets::ProbeRefused {
    crate::deliver::targets::ProbeRefused::NoProbe(
        "an EventBridge target cannot be tested without publishing an event".into(),
    )
}
