//! Group membership from a user's fields: each configured source field (department,
//! division, location, or any other field or custom attribute) puts the user in the
//! group named by its value.

use domain::{DirectoryUser, GroupId};

use crate::field::Field;
use crate::read::user_field;

/// One group a user belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    /// Derived id (directory, source, value).
    pub id: GroupId,
    /// The source field, as configured.
    pub source: String,
    /// The value, which names the group.
    pub name: String,
}

/// The value of a source field on a user: a known field by any of its keys, else a
/// custom attribute of that name. Blank values put the user in no group.
fn source_value(user: &DirectoryUser, source: &str) -> Option<String> {
    let value = match Field::from_key(source) {
        Some(field) => user_field(user, field),
        None => match user.custom_attributes.get(source) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        },
    }?;
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// The groups a user belongs to, by source order, without duplicates. Deleted users
/// belong to no group.
pub fn user_groups(user: &DirectoryUser, sources: &[String]) -> Vec<GroupRef> {
    if user.state == domain::UserState::Deleted {
        return Vec::new();
    }
    let mut groups: Vec<GroupRef> = Vec::new();
    for source in sources {
        if let Some(name) = source_value(user, source) {
            let id = GroupId::derive(&user.directory_id, source, &name);
            if !groups.iter().any(|g| g.id == id) {
                groups.push(GroupRef {
                    id,
                    source: source.clone(),
                    name,
                });
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DirectoryId, EmployeeId, UserState};

    fn user() -> DirectoryUser {
        DirectoryUser::new(
            DirectoryId::parse("acme").unwrap(),
            EmployeeId::parse("7").unwrap(),
            UserState::Active,
        )
    }

    #[test]
    fn a_user_joins_one_group_per_source_with_a_value() {
        let mut u = user();
        u.department = Some("Sales".into());
        u.location = Some("  ".into());
        u.custom_attributes
            .insert("team".into(), serde_json::json!("Blue"));
        let groups = user_groups(&u, &["department".into(), "location".into(), "team".into()]);
        let names: Vec<_> = groups
            .iter()
            .map(|g| (g.source.as_str(), g.name.as_str()))
            .collect();
        assert_eq!(names, vec![("department", "Sales"), ("team", "Blue")]);
        assert_eq!(
            groups[0].id,
            GroupId::derive(&u.directory_id, "department", "sales")
        );
    }

    #[test]
    fn deleted_users_belong_to_no_group() {
        let mut u = user();
        u.department = Some("Sales".into());
        u.state = UserState::Deleted;
        assert!(user_groups(&u, &["department".into()]).is_empty());
    }
}
