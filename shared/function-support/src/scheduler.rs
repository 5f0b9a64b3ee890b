//! The poller's directory schedules on AWS: the settings the SAM template passes in
//! the environment, and the [`EventBridgeScheduler`] built from them.
//!
//! The template sets SCHEDULER_GROUP, SCHEDULER_ROLE_ARN and POLLER_DLQ_ARN. The
//! schedules' target, the poller itself, is not in the environment: a function's
//! environment cannot name the function's own ARN in CloudFormation (the reference
//! would be circular). The poller uses its invocation context's
//! `invoked_function_arn` instead, with any version or alias qualifier removed, since
//! the scheduler role may invoke the unqualified function only and a schedule must
//! outlive the version that created it. Callers outside Lambda (the CLI) pass the
//! stack's `PollerFunctionArn` output.

use aws_adapters::{EventBridgeScheduler, EventBridgeSchedulerConfig};

use crate::ConfigError;

/// A poller ARN that is not a Lambda function ARN.
#[derive(Debug, thiserror::Error)]
#[error("not a Lambda function ARN: {0}")]
pub struct NotAFunctionArn(String);

/// The schedule settings from the poller's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerSettings {
    /// SCHEDULER_GROUP: the stack's schedule group.
    pub group_name: String,
    /// SCHEDULER_ROLE_ARN: the role schedules invoke the poller as.
    pub role_arn: String,
    /// POLLER_DLQ_ARN: where invocations that keep failing go.
    pub dead_letter_arn: String,
}

impl SchedulerSettings {
    /// Reads SCHEDULER_GROUP, SCHEDULER_ROLE_ARN and POLLER_DLQ_ARN.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests); empty
    /// values count as missing.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        Ok(Self {
            group_name: get("SCHEDULER_GROUP")?,
            role_arn: get("SCHEDULER_ROLE_ARN")?,
            dead_letter_arn: get("POLLER_DLQ_ARN")?,
        })
    }

    /// The adapter configuration for schedules that invoke `poller_arn` (qualified or
    /// not; the qualifier is dropped).
    pub fn targeting(
        &self,
        poller_arn: &str,
    ) -> Result<EventBridgeSchedulerConfig, NotAFunctionArn> {
        Ok(EventBridgeSchedulerConfig {
            group_name: self.group_name.clone(),
            role_arn: self.role_arn.clone(),
            target_arn: unqualified_function_arn(poller_arn)?,
            dead_letter_arn: self.dead_letter_arn.clone(),
        })
    }
}

/// `arn:<partition>:lambda:<region>:<account>:function:<name>`, without the `:<version
/// or alias>` an invocation ARN may carry.
pub fn unqualified_function_arn(arn: &str) -> Result<String, NotAFunctionArn> {
    let parts: Vec<&str> = arn.split(':').collect();
    let shaped = matches!(parts.len(), 7 | 8)
        && parts[0] == "arn"
        && parts[2] == "lambda"
        && parts[5] == "function"
        && [1, 3, 4, 6].iter().all(|&i| !parts[i].is_empty())
        && parts.get(7).is_none_or(|q| !q.is_empty());
    if !shaped {
        return Err(NotAFunctionArn(arn.to_string()));
    }
    Ok(parts[..7].join(":"))
}

/// The poller's scheduler on AWS, its schedules invoking `poller_arn` (on Lambda: the
/// context's `invoked_function_arn`).
pub fn aws_scheduler(
    sdk: &aws_config::SdkConfig,
    settings: &SchedulerSettings,
    poller_arn: &str,
) -> Result<EventBridgeScheduler, NotAFunctionArn> {
    Ok(EventBridgeScheduler::new(
        sdk,
        settings.targeting(poller_arn)?,
    ))
}

/// What a function that asks the poller for runs reads: the schedule settings and
/// the poller they invoke (POLLER_FUNCTION_ARN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollerSchedules {
    /// Where schedules live and what they run as.
    pub settings: SchedulerSettings,
    /// The poller the schedules invoke.
    pub poller_arn: String,
}

impl PollerSchedules {
    /// Reads the schedule settings and POLLER_FUNCTION_ARN.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            settings: SchedulerSettings::from_env()?,
            poller_arn: crate::poller_arn_from_env()?,
        })
    }

    /// The scheduler on EventBridge Scheduler, targeting the poller.
    pub fn scheduler(
        &self,
        sdk: &aws_config::SdkConfig,
    ) -> Result<EventBridgeScheduler, NotAFunctionArn> {
        aws_scheduler(sdk, &self.settings, &self.poller_arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:bsync-PollerFunction-AbC";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_settings_come_from_the_three_variables_the_template_sets() {
        let settings = SchedulerSettings::from_lookup(env(&[
            ("SCHEDULER_GROUP", "bamboohr-sync-prod"),
            ("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/sched"),
            ("POLLER_DLQ_ARN", "arn:aws:sqs:eu-west-1:123456789012:dlq"),
        ]))
        .unwrap();
        let config = settings.targeting(ARN).unwrap();
        assert_eq!(config.group_name, "bamboohr-sync-prod");
        assert_eq!(config.role_arn, "arn:aws:iam::123456789012:role/sched");
        assert_eq!(
            config.dead_letter_arn,
            "arn:aws:sqs:eu-west-1:123456789012:dlq"
        );
        assert_eq!(config.target_arn, ARN);
    }

    #[test]
    fn a_missing_or_blank_variable_is_named_in_the_error() {
        let err = SchedulerSettings::from_lookup(env(&[
            ("SCHEDULER_GROUP", "g"),
            ("SCHEDULER_ROLE_ARN", "  "),
            ("POLLER_DLQ_ARN", "q"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("SCHEDULER_ROLE_ARN"), "{err}");
        let err = SchedulerSettings::from_lookup(env(&[])).unwrap_err();
        assert!(err.to_string().contains("SCHEDULER_GROUP"), "{err}");
    }

    #[test]
    fn schedules_target_the_unqualified_function_whatever_version_was_invoked() {
        assert_eq!(unqualified_function_arn(ARN).unwrap(), ARN);
        assert_eq!(
            unqualified_function_arn(&format!("{ARN}:live")).unwrap(),
            ARN
        );
        assert_eq!(unqualified_function_arn(&format!("{ARN}:42")).unwrap(), ARN);
        for bad in [
            "",
            "bsync-poller",
            "arn:aws:sqs:eu-west-1:123456789012:queue",
            "arn:aws:lambda:eu-west-1:123456789012:layer:x",
            "arn:aws:lambda:eu-west-1:123456789012:function:",
            "arn:aws:lambda:eu-west-1:123456789012:function:a:b:c",
        ] {
            assert!(unqualified_function_arn(bad).is_err(), "{bad}");
        }
    }
}
