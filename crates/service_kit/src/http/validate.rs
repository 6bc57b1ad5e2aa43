//! Reading a JSON object body field by field into domain types, collecting
//! every invalid field so that one 422 lists them all.
//!
//! Services parse, they don't validate: each field goes through its domain
//! type's `parse`, and once a value has that type it is known to be valid.

use serde_json::{Map, Value};

use crate::http::problem::{ApiError, FieldError};

/// A parser from one JSON value to a domain value, or the reason it is not one.
pub type FieldParser<T> = fn(&Value) -> Result<T, String>;

/// The fields of one JSON object body.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// `known` are the fields a client may send; `read_only` are fields of the
    /// resource's representation that are accepted and ignored (so that a
    /// client can send back what it got). Any other field is an error, so a
    /// typo in an optional field is not silently dropped.
    pub fn of(body: &'a Value, known: &[&str], read_only: &[&str]) -> Result<Self, ApiError> {
        let Value::Object(map) = body else {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        };
        let errors = unknown_members(map, known, read_only);
        Ok(Self { map, errors })
    }

    /// A field that must be present and not null.
    pub fn required<T>(&mut self, name: &str, parse: FieldParser<T>) -> Option<T> {
        match self.map.get(name) {
            None => self.fail(name, "is required".into()),
            Some(Value::Null) => self.fail(name, "must not be null".into()),
            Some(value) => self.parse(name, value, parse),
        }
    }

    /// A field that takes `default` when it is absent or null.
    pub fn optional<T>(&mut self, name: &str, default: T, parse: FieldParser<T>) -> Option<T> {
        match self.map.get(name) {
            None | Some(Value::Null) => Some(default),
            Some(value) => self.parse(name, value, parse),
        }
    }

    /// A field that may be absent (`Some(None)`), but not null: a member of
    /// a merge patch, checked before the patch is applied.
    pub fn present<T>(&mut self, name: &str, parse: FieldParser<T>) -> Option<Option<T>> {
        match self.map.get(name) {
            None => Some(None),
            Some(Value::Null) => self.fail(name, "is required: it cannot be removed".into()),
            Some(value) => self.parse(name, value, parse).map(Some),
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

/// Each member of `map` that is neither in `known` nor in `read_only`.
fn unknown_members(
    map: &Map<String, Value>,
    known: &[&str],
    read_only: &[&str],
) -> Vec<FieldError> {
    map.keys()
        .filter(|key| !known.contains(&key.as_str()) && !read_only.contains(&key.as_str()))
        .map(|key| FieldError::new(key.as_str(), "is not a field of this resource"))
        .collect()
}

/// A 422 naming every member of `map` that is not a field (`known`) or a
/// read-only member (`read_only`): for a merge patch, whose members are
/// checked before it is applied, since one set to `null` removes nothing
/// and would otherwise pass unseen.
pub fn only_fields(
    map: &Map<String, Value>,
    known: &[&str],
    read_only: &[&str],
) -> Result<(), ApiError> {
    let errors = unknown_members(map, known, read_only);
    match errors.is_empty() {
        true => Ok(()),
        false => Err(ApiError::Validation(errors)),
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

    #[test]
    fn collects_every_invalid_field() {
        let body = json!({"name": "", "count": 11, "nmae": "typo", "id": 7});
        let mut fields = Fields::of(&body, &["name", "count"], &["id"]).unwrap();
        let n = fields.required("name", name);
        let c = fields.required("count", count);
        let Err(ApiError::Validation(errors)) = fields.finish(|| Some((n?, c?))) else {
            panic!("expected a validation error");
        };
        let named: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["nmae", "name", "count"]);
    }

    #[test]
    fn optional_fields_default_and_required_fields_must_be_present() {
        let body = json!({"name": "  ab  ", "count": null});
        let mut fields = Fields::of(&body, &["name", "count"], &[]).unwrap();
        let n = fields.required("name", name);
        let c = fields.optional("count", 1, count);
        assert_eq!(fields.finish(|| Some((n?, c?))).unwrap(), ("ab".into(), 1));

        let body = json!({"count": 2});
        let mut fields = Fields::of(&body, &["name", "count"], &[]).unwrap();
        assert!(fields.required("name", name).is_none());
        assert!(fields.finish(|| Some(())).is_err());
    }

    #[test]
    fn only_fields_names_every_stranger_even_a_null_one() {
        let patch = json!({"name": "x", "id": 3, "": null, "nmae": null});
        let Value::Object(map) = patch else { panic!() };
        let Err(ApiError::Validation(errors)) = only_fields(&map, &["name"], &["id"]) else {
            panic!("expected 422");
        };
        let named: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(named, ["", "nmae"]);
        let ok = json!({"name": null, "id": 1});
        let Value::Object(map) = ok else { panic!() };
        assert!(only_fields(&map, &["name"], &["id"]).is_ok());
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
        assert!(Fields::of(&json!([1]), &[], &[]).is_err());
    }
}
