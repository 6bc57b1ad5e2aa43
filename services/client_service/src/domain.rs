//! The client, parsed from JSON into types that can only hold valid values.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use service_kit::{
    ApiError,
    data::db::{FromRow, Row},
    http::{
        extract::MergePatch,
        validate::{self, Fields},
    },
};

/// A client as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 1, "name": "Ada Lovelace", "card_number": "AL-1815",
    "card_issued_on": "2020-02-29", "created_at": "2026-11-30T12:00:00Z", "updated_at": "2026-11-30T12:00:00Z"}))]
pub struct Client {
    pub id: i64,
    pub name: String,
    pub card_number: String,
    pub card_issued_on: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every update; sent as the `ETag`, not in the body.
    #[serde(skip)]
    pub version: i64,
}

impl FromRow for Client {
    fn from_row(row: &Row<'_>) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.get("id")?,
            name: row.get("name")?,
            card_number: row.get("card_number")?,
            card_issued_on: row.get("card_issued_on")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
            version: row.get("version")?,
        })
    }
}

impl Client {
    /// The writable fields as JSON, for applying a merge patch.
    pub fn writable_fields(&self) -> serde_json::Map<String, Value> {
        let mut fields = serde_json::Map::new();
        fields.insert("name".into(), self.name.clone().into());
        fields.insert("card_number".into(), self.card_number.clone().into());
        fields.insert(
            "card_issued_on".into(),
            self.card_issued_on.to_string().into(),
        );
        fields
    }
}

/// The writable fields of a client: the body of POST and PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClient {
    pub name: ClientName,
    pub card_number: CardNumber,
    pub card_issued_on: CardIssuedOn,
}

const FIELDS: &[&str] = &["name", "card_number", "card_issued_on"];
const READ_ONLY: &[&str] = &["id", "created_at", "updated_at"];

impl NewClient {
    /// The client as it was just stored under `id`, at `now`: at version 1
    /// (the column's default), created and updated at `now`.
    pub fn stored(&self, id: i64, now: DateTime<Utc>) -> Client {
        Client {
            id,
            name: self.name.as_str().to_owned(),
            card_number: self.card_number.as_str().to_owned(),
            card_issued_on: self.card_issued_on.date(),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// PATCH: `current`'s fields with the merge patch applied, parsed as
    /// for PUT. A member that is not a field is a 422 even when it is
    /// `null` (which would remove nothing).
    /// A merge patch's members on their own, before the patch is applied
    /// (and before the request's preconditions: see the guide's "Order of
    /// the checks"): each must be a field, set to a valid value (no field
    /// can be removed).
    pub fn check_patch(patch: &MergePatch) -> Result<(), ApiError> {
        let members = Value::Object(patch.members().clone());
        let mut fields = Fields::of(&members, FIELDS, READ_ONLY)?;
        let name = fields.present("name", ClientName::parse);
        let card_number = fields.present("card_number", CardNumber::parse);
        let card_issued_on = fields.present("card_issued_on", CardIssuedOn::parse);
        fields.finish(|| name.and(card_number).and(card_issued_on).map(drop))
    }

    pub fn parse_patch(current: &Client, patch: &MergePatch) -> Result<Self, ApiError> {
        validate::only_fields(patch.members(), FIELDS, READ_ONLY)?;
        let mut fields = current.writable_fields();
        patch.apply_to(&mut fields);
        Self::parse(&Value::Object(fields))
    }

    /// Every field is required; every invalid field is reported.
    pub fn parse(body: &Value) -> Result<Self, ApiError> {
        let mut fields = Fields::of(body, FIELDS, READ_ONLY)?;
        let name = fields.required("name", ClientName::parse);
        let card_number = fields.required("card_number", CardNumber::parse);
        let card_issued_on = fields.required("card_issued_on", CardIssuedOn::parse);
        fields.finish(|| {
            Some(Self {
                name: name?,
                card_number: card_number?,
                card_issued_on: card_issued_on?,
            })
        })
    }
}

/// 1 to 200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(String);

impl ClientName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(value: &Value) -> Result<Self, String> {
        validate::text(value, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name in lower case, for case-insensitive search (any script).
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }
}

/// 1 to 32 ASCII letters, digits and `-`; unique among clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl CardNumber {
    pub const MAX_CHARS: usize = 32;

    pub fn parse(value: &Value) -> Result<Self, String> {
        let raw = validate::string(value)?;
        if raw.is_empty() || raw.len() > Self::MAX_CHARS {
            return Err(format!(
                "must be 1 to {} characters (got {})",
                Self::MAX_CHARS,
                raw.chars().count()
            ));
        }
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("may contain only the letters A-Z and a-z, digits and `-`".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A real calendar date, `YYYY-MM-DD`, from 1900-01-01 up to today (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardIssuedOn(NaiveDate);

impl CardIssuedOn {
    pub fn parse(value: &Value) -> Result<Self, String> {
        Self::parse_on(value, Utc::now().date_naive())
    }

    /// As [`parse`](Self::parse), with "today" given (for tests).
    pub fn parse_on(value: &Value, today: NaiveDate) -> Result<Self, String> {
        let raw = validate::string(value)?;
        let well_formed = raw.len() == 10
            && raw.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !well_formed {
            return Err(format!("must be a date written YYYY-MM-DD (got `{raw}`)"));
        }
        let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| format!("`{raw}` is not a date in the calendar"))?;
        if date > today {
            return Err(format!("must not be in the future (today is {today})"));
        }
        if date < Self::EARLIEST {
            return Err(format!("must not be before {}", Self::EARLIEST));
        }
        Ok(Self(date))
    }

    const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
        Some(date) => date,
        None => panic!("1900-01-01 is a date"),
    };

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
    }

    #[test]
    fn dates_must_be_real_past_and_well_written() {
        let ok = |s: &str| CardIssuedOn::parse_on(&json!(s), today());
        assert!(ok("2024-02-29").is_ok());
        assert!(ok("2026-11-30").is_ok());
        assert!(ok("2023-02-29").unwrap_err().contains("not a date"));
        assert!(ok("2024-13-01").is_err());
        assert!(ok("2026-12-01").unwrap_err().contains("future"));
        assert!(ok("1899-12-31").is_err());
        assert!(ok("2024-1-05").is_err());
        assert!(ok("05.01.2024").is_err());
        assert!(ok("2024-01-05T00:00:00Z").is_err());
        assert!(CardIssuedOn::parse_on(&json!(20240105), today()).is_err());
    }

    #[test]
    fn card_numbers_are_short_and_plain() {
        assert!(CardNumber::parse(&json!("AB-1234-x")).is_ok());
        assert!(CardNumber::parse(&json!("")).is_err());
        assert!(CardNumber::parse(&json!("A".repeat(33))).is_err());
        assert!(CardNumber::parse(&json!("A".repeat(32))).is_ok());
        assert!(CardNumber::parse(&json!("AB 12")).is_err());
        assert!(CardNumber::parse(&json!("ÄB12")).is_err());
        assert!(CardNumber::parse(&json!("1'; DROP TABLE clients;--")).is_err());
        assert!(CardNumber::parse(&json!(1234)).is_err());
    }

    #[test]
    fn a_client_needs_every_field() {
        let body = json!({"name": "  Ada Lovelace ", "card_number": "C-1", "card_issued_on": "2020-01-01"});
        let client = NewClient::parse(&body).unwrap();
        assert_eq!(client.name.as_str(), "Ada Lovelace");

        let Err(ApiError::Validation(errors)) = NewClient::parse(&json!({"name": ""})) else {
            panic!("expected 422");
        };
        assert_eq!(errors.len(), 3);
        assert!(
            NewClient::parse(
                &json!({"id": 5, "name": "x", "card_number": "1", "card_issued_on": "2020-01-01"})
            )
            .is_ok()
        );
    }
}
