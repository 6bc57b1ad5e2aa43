//! Reading a request body into domain types, field by field, collecting
//! every invalid field so that one 422 lists them all.
//!
//! A body is a struct whose fields are [`Member`]s (deserialising it never
//! fails on one field) and which is also the body's OpenAPI schema, each
//! field's schema its domain type's (see a service's `schema.rs`): the
//! request contract is written once. The [`Body`](crate::extract::Body)
//! extractor refuses the members the schema does not have; then [`Checks`]
//! turns each member into its domain type with that type's `parse`.
//! Services parse, they don't validate: once a value has its domain type it
//! is known to be valid.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::problem::{ApiError, FieldError};

/// A parser from one JSON value to a domain value, or the reason it is not one.
pub type FieldParser<T> = fn(&Value) -> Result<T, String>;

/// One member of a request body: absent, or what was sent (`null`
/// included). With `#[serde(default)]` on each field of a body struct.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Member {
    #[default]
    Absent,
    Sent(Value),
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Member::Sent)
    }
}

/// The checks of one body's members, each invalid one kept.
#[derive(Debug, Default)]
pub struct Checks {
    errors: Vec<FieldError>,
}

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    /// A field that must be sent, and not as null.
    pub fn required<T>(&mut self, name: &str, member: &Member, parse: FieldParser<T>) -> Option<T> {
        match member {
            Member::Absent => self.fail(name, "is required".into()),
            Member::Sent(Value::Null) => self.fail(name, "must not be null".into()),
            Member::Sent(value) => self.parse(name, value, parse),
        }
    }

    /// A field that takes `default` when it is absent or null.
    pub fn optional<T>(
        &mut self,
        name: &str,
        member: &Member,
        default: T,
        parse: FieldParser<T>,
    ) -> Option<T> {
        match member {
            Member::Absent | Member::Sent(Value::Null) => Some(default),
            Member::Sent(value) => self.parse(name, value, parse),
        }
    }

    /// A member of a merge patch: absent (`Some(None)`: unchanged), or a
    /// new value; `null` would remove the field, which no field allows.
    pub fn changed<T>(
        &mut self,
        name: &str,
        member: &Member,
        parse: FieldParser<T>,
    ) -> Option<Option<T>> {
        match member {
            Member::Absent => Some(None),
            Member::Sent(Value::Null) => {
                self.fail(name, "is required: it cannot be removed".into())
            }
            Member::Sent(value) => self.parse(name, value, parse).map(Some),
        }
    }

    fn parse<T>(&mut self, name: &str, value: &Value, parse: FieldParser<T>) -> Option<T> {
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(message) => self.fail(name, message),
        }
    }

    fn fail<T>(&mut self, name: &str, message: String) -> Option<T> {
        self.errors.push(FieldError::new(name, message));
        None
    }

    /// The domain value built from the parsed fields, or a 422 listing every
    /// field that failed. `build` returns `None` only when a field failed.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        match (self.errors.is_empty(), build()) {
            (true, Some(value)) => Ok(value),
            (true, None) => Err(ApiError::internal("a field failed without an error")),
            (false, _) => Err(ApiError::Validation(self.errors)),
        }
    }
}

/// The value as a string, or the reason it is not one.
pub fn string(value: &Value) -> Result<&str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("must be a string, not {}", kind(value)))
}

/// Text that is 1..=`max` characters once trimmed, with no control characters.
pub fn text(value: &Value, max: usize) -> Result<String, String> {
    let trimmed = string(value)?.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err("must not be empty".into());
    }
    if chars > max {
        return Err(format!("must be at most {max} characters (got {chars})"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(trimmed.to_owned())
}

/// A number with no fractional part (`3` or `3.0`, both integers in JSON
/// Schema) in `min..=max`.
pub fn integer_in(value: &Value, min: i64, max: i64) -> Result<i64, String> {
    let whole = value
        .as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
        .map(|f| f as i64);
    let Some(n) = value.as_i64().or(whole) else {
        return Err(match value {
            Value::Number(_) => format!("must be a whole number from {min} to {max}"),
            other => format!("must be an integer, not {}", kind(other)),
        });
    };
    if !(min..=max).contains(&n) {
        return Err(format!("must be from {min} to {max} (got {n})"));
    }
    Ok(n)
}

/// The JSON type of a value, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn name(v: &Value) -> Result<String, String> {
        text(v, 5)
    }
    fn count(v: &Value) -> Result<i64, String> {
        integer_in(v, 1, 10)
    }

    #[derive(Deserialize)]
    struct Input {
        #[serde(default)]
        name: Member,
        #[serde(default)]
        count: Member,
    }

    fn input(body: Value) -> Input {
        Input::deserialize(&body).unwrap()
    }

    #[test]
    fn collects_every_invalid_field() {
        let body = input(json!({"name": "", "count": 11}));
        let mut checks = Checks::new();
        let n = checks.required("name", &body.name, name);
        let c = checks.required("count", &body.count, count);
        let Err(ApiError::Validation(errors)) = checks.finish(|| Some((n?, c?))) else {
            panic!("expected a validation error");
        };
        let named: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["name", "count"]);
    }

    #[test]
    fn optional_fields_default_and_required_fields_must_be_present() {
        let body = input(json!({"name": "  ab  ", "count": null}));
        let mut checks = Checks::new();
        let n = checks.required("name", &body.name, name);
        let c = checks.optional("count", &body.count, 1, count);
        assert_eq!(checks.finish(|| Some((n?, c?))).unwrap(), ("ab".into(), 1));

        let body = input(json!({"count": 2}));
        let mut checks = Checks::new();
        assert!(checks.required("name", &body.name, name).is_none());
        assert!(checks.finish(|| Some(())).is_err());
    }

    #[test]
    fn a_patch_changes_what_it_sends_and_removes_nothing() {
        let body = input(json!({"count": 3, "name": null}));
        let mut checks = Checks::new();
        assert_eq!(checks.changed("count", &body.count, count), Some(Some(3)));
        assert_eq!(checks.changed("name", &body.name, name), None);
        let Err(ApiError::Validation(errors)) = checks.finish(|| Some(())) else {
            panic!("expected 422");
        };
        assert_eq!(errors[0].field, "name");
        let mut checks = Checks::new();
        assert_eq!(checks.changed("name", &Member::Absent, name), Some(None));
    }

    #[test]
    fn text_and_integer_rules() {
        assert_eq!(text(&json!("héllo"), 5).unwrap(), "héllo");
        assert!(text(&json!("héllo!"), 5).is_err());
        assert!(text(&json!("a\u{0}b"), 5).is_err());
        assert!(text(&json!(5), 5).unwrap_err().contains("a number"));
        assert!(integer_in(&json!(2.5), 1, 10).is_err());
        assert_eq!(integer_in(&json!(2.0), 1, 10).unwrap(), 2);
        assert!(integer_in(&json!("2"), 1, 10).is_err());
        assert_eq!(integer_in(&json!(10), 1, 10).unwrap(), 10);
    }
}
