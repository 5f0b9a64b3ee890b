//! The simulated company's state behind the lock: employees (deleted ones kept, so the
//! changed feed can report them), what changed last per employee (for webhook payloads),
//! the request counter, fault plans, credentials and configuration.

use std::collections::{BTreeMap, BTreeSet};

use time::{Date, OffsetDateTime};

use crate::employee::{EmployeeStatus, Field, SimEmployee};
use crate::faults::FaultBook;
use crate::{SimConfig, SimError};

/// What a field-based webhook reports as the employee's last action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Created,
    Updated,
    Deleted,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Created => "Created",
            Action::Updated => "Updated",
            Action::Deleted => "Deleted",
        }
    }
}

/// The last mutation of an employee.
#[derive(Debug, Clone)]
pub(crate) struct LastChange {
    pub(crate) action: Action,
    pub(crate) fields: Vec<Field>,
}

/// Where the simulator sends field-based webhooks after control-API mutations.
#[derive(Debug, Clone)]
pub(crate) struct WebhookTarget {
    pub(crate) url: String,
    pub(crate) key: Vec<u8>,
    pub(crate) payload: crate::WebhookPayload,
    pub(crate) schedule: crate::RetrySchedule,
}

pub(crate) struct State {
    pub(crate) cfg: SimConfig,
    pub(crate) employees: BTreeMap<u64, SimEmployee>,
    pub(crate) inserted_at: BTreeMap<u64, OffsetDateTime>,
    pub(crate) last_change: BTreeMap<u64, LastChange>,
    pub(crate) custom_fields: BTreeSet<String>,
    pub(crate) restricted: BTreeSet<Field>,
    pub(crate) next_id: u64,
    pub(crate) requests: u64,
    pub(crate) faults: FaultBook,
    pub(crate) bearer_tokens: BTreeSet<String>,
    pub(crate) webhook: Option<WebhookTarget>,
    /// Outcomes of webhooks sent.
    pub(crate) webhook_reports: Vec<crate::DeliveryReport>,
    /// Webhooks registered through the webhooks API, by id.
    pub(crate) webhooks: BTreeMap<u64, crate::webhooks_api::Registered>,
    /// The last webhook id handed out.
    pub(crate) next_webhook_id: u64,
    /// OAuth clients and refresh tokens.
    pub(crate) oauth: crate::oauth::OAuthBook,
    /// Served exchanges, while a test records them.
    pub(crate) recording: Option<Vec<crate::record::Exchange>>,
    /// Training types and records.
    pub(crate) training: crate::training::TrainingBook,
}

pub(crate) use crate::clock::{now, today};

fn numeric_id(id: &str) -> Option<u64> {
    id.trim().parse().ok()
}

impl State {
    pub(crate) fn new(cfg: SimConfig, employees: Vec<SimEmployee>) -> Self {
        let restricted = cfg
            .restricted_fields
            .iter()
            .map(|name| Field::from_any_name(name))
            .collect();
        let mut state = State {
            cfg,
            employees: BTreeMap::new(),
            inserted_at: BTreeMap::new(),
            last_change: BTreeMap::new(),
            custom_fields: BTreeSet::new(),
            restricted,
            next_id: 1,
            requests: 0,
            faults: FaultBook::default(),
            bearer_tokens: BTreeSet::new(),
            webhook: None,
            recording: None,
            oauth: crate::oauth::OAuthBook::default(),
            webhooks: BTreeMap::new(),
            webhook_reports: Vec::new(),
            next_webhook_id: 0,
            training: crate::training::TrainingBook::default(),
        };
        for mut e in employees {
            let id = match numeric_id(&e.employee_id) {
                Some(id) if !state.employees.contains_key(&id) => id,
                _ => state.next_id.max(1),
            };
            e.employee_id = id.to_string();
            state.next_id = state.next_id.max(id + 1);
            state.custom_fields.extend(e.custom.keys().cloned());
            // Generated and loaded employees were inserted no later than their last change.
            state.inserted_at.insert(id, e.last_changed);
            state.last_change.insert(
                id,
                LastChange {
                    action: Action::Created,
                    fields: Vec::new(),
                },
            );
            state.employees.insert(id, e);
        }
        state
    }

    /// The live (not deleted) employee with this id.
    pub(crate) fn live(&self, id: &str) -> Option<&SimEmployee> {
        self.employees.get(&numeric_id(id)?).filter(|e| !e.deleted)
    }

    fn live_mut(&mut self, id: &str) -> Result<(u64, &mut SimEmployee), SimError> {
        let unknown = || SimError::UnknownEmployee { id: id.to_string() };
        let key = numeric_id(id).ok_or_else(unknown)?;
        match self.employees.get_mut(&key) {
            Some(e) if !e.deleted => Ok((key, e)),
            _ => Err(unknown()),
        }
    }

    /// The manager of `e`, for "Reporting to" style fields.
    pub(crate) fn manager_of(&self, e: &SimEmployee) -> Option<&SimEmployee> {
        self.live(e.supervisor_eid.as_deref()?)
    }

    pub(crate) fn hire(&mut self, mut e: SimEmployee) -> String {
        let id = match numeric_id(&e.employee_id) {
            Some(id) if id > 0 && !self.employees.contains_key(&id) => id,
            _ => self.next_id,
        };
        self.next_id = self.next_id.max(id + 1);
        e.employee_id = id.to_string();
        e.deleted = false;
        if e.hire_date.is_some_and(|d| d > today()) {
            // BambooHR shows future hires as Inactive until their start date.
            e.status = EmployeeStatus::Inactive;
        }
        let at = now();
        e.last_changed = at;
        self.custom_fields.extend(e.custom.keys().cloned());
        self.inserted_at.insert(id, at);
        self.last_change.insert(
            id,
            LastChange {
                action: Action::Created,
                fields: Field::standard().collect(),
            },
        );
        self.employees.insert(id, e);
        id.to_string()
    }

    pub(crate) fn update(
        &mut self,
        id: &str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<(), SimError> {
        let (key, e) = self.live_mut(id)?;
        let mut next = e.clone();
        let mut changed = Vec::new();
        for (name, value) in changes {
            let field = Field::from_key(name);
            let before = next.value(&field, None);
            next.set(&field, value.clone())
                .map_err(|reason| SimError::InvalidValue {
                    field: name.clone(),
                    reason,
                })?;
            if next.value(&field, None) != before {
                changed.push(field);
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        next.last_changed = now();
        *e = next;
        let custom: Vec<String> = changed
            .iter()
            .filter_map(|f| match f {
                Field::Custom(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        self.custom_fields.extend(custom);
        self.last_change.insert(
            key,
            LastChange {
                action: Action::Updated,
                fields: changed,
            },
        );
        Ok(())
    }

    pub(crate) fn terminate(&mut self, id: &str, date: Date) -> Result<(), SimError> {
        let (key, e) = self.live_mut(id)?;
        e.termination_date = Some(date);
        if date <= today() {
            e.status = EmployeeStatus::Inactive;
            e.employment_status = Some("Terminated".into());
        }
        e.last_changed = now();
        self.last_change.insert(
            key,
            LastChange {
                action: Action::Updated,
                fields: vec![
                    Field::TerminationDate,
                    Field::Status,
                    Field::EmploymentStatus,
                ],
            },
        );
        Ok(())
    }

    pub(crate) fn rehire(&mut self, id: &str, date: Date) -> Result<(), SimError> {
        let (key, e) = self.live_mut(id)?;
        e.hire_date = Some(date);
        e.termination_date = None;
        e.status = if date <= today() {
            EmployeeStatus::Active
        } else {
            EmployeeStatus::Inactive
        };
        if e.employment_status.as_deref() == Some("Terminated") {
            e.employment_status = Some("Full-Time".into());
        }
        e.last_changed = now();
        self.last_change.insert(
            key,
            LastChange {
                action: Action::Updated,
                fields: vec![
                    Field::HireDate,
                    Field::TerminationDate,
                    Field::Status,
                    Field::EmploymentStatus,
                ],
            },
        );
        Ok(())
    }

    pub(crate) fn delete(&mut self, id: &str) -> Result<(), SimError> {
        let (key, e) = self.live_mut(id)?;
        e.deleted = true;
        e.last_changed = now();
        self.last_change.insert(
            key,
            LastChange {
                action: Action::Deleted,
                fields: Vec::new(),
            },
        );
        Ok(())
    }
}
