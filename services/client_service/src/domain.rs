//! The client, parsed from JSON into types that can only hold valid values.

use chrono::{DateTime, NaiveDate, Utc};
use kit_http::{
    ApiError,
    validate::{self, Checks, Member},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A client as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
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

/// The body of `POST /client/` and `PUT /client/{id}`: every field
/// required. The read-only fields a `GET` returns are accepted and
/// ignored, so that a client can send back what it got.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ada Lovelace", "card_number": "AL-1815", "card_issued_on": "2020-02-29"}))]
pub struct ClientInput {
    #[serde(default)]
    #[schema(value_type = ClientName, inline, required = true)]
    pub name: Member,
    #[serde(default)]
    #[schema(value_type = CardNumber, inline, required = true)]
    pub card_number: Member,
    #[serde(default)]
    #[schema(value_type = CardIssuedOn, inline, required = true)]
    pub card_issued_on: Member,
    /// Read-only (as returned by GET): accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<serde_json::Value>)]
    pub id: Member,
    /// Read-only: accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<serde_json::Value>)]
    pub created_at: Member,
    /// Read-only: accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<serde_json::Value>)]
    pub updated_at: Member,
}

/// A JSON Merge Patch of a client (`PATCH /client/{id}`): only the fields
/// sent change; none can be removed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ada King"}))]
pub struct ClientPatch {
    #[serde(default)]
    #[schema(value_type = ClientName, inline)]
    pub name: Member,
    #[serde(default)]
    #[schema(value_type = CardNumber, inline)]
    pub card_number: Member,
    #[serde(default)]
    #[schema(value_type = CardIssuedOn, inline)]
    pub card_issued_on: Member,
    /// Read-only (as returned by GET): accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<serde_json::Value>)]
    pub id: Member,
    /// Read-only: accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<serde_json::Value>)]
    pub created_at: Member,
    /// Read-only: accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<serde_json::Value>)]
    pub updated_at: Member,
}

/// The writable fields of a client, each of its domain type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClient {
    pub name: ClientName,
    pub card_number: CardNumber,
    pub card_issued_on: CardIssuedOn,
}

/// The changes of a merge patch, each checked (before the patch is
/// applied, and before the request's preconditions: see
/// docs/src/how-it-works/api.md#order-of-the-checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientChanges {
    name: Option<ClientName>,
    card_number: Option<CardNumber>,
    card_issued_on: Option<CardIssuedOn>,
}

impl TryFrom<ClientInput> for NewClient {
    type Error = ApiError;

    /// Every field parsed; every invalid field reported.
    fn try_from(input: ClientInput) -> Result<Self, ApiError> {
        let mut checks = Checks::new();
        let name = checks.required("name", &input.name, ClientName::parse);
        let card_number = checks.required("card_number", &input.card_number, CardNumber::parse);
        let card_issued_on =
            checks.required("card_issued_on", &input.card_issued_on, CardIssuedOn::parse);
        checks.finish(|| {
            Some(Self {
                name: name?,
                card_number: card_number?,
                card_issued_on: card_issued_on?,
            })
        })
    }
}

impl TryFrom<ClientPatch> for ClientChanges {
    type Error = ApiError;

    fn try_from(patch: ClientPatch) -> Result<Self, ApiError> {
        let mut checks = Checks::new();
        let name = checks.changed("name", &patch.name, ClientName::parse);
        let card_number = checks.changed("card_number", &patch.card_number, CardNumber::parse);
        let card_issued_on =
            checks.changed("card_issued_on", &patch.card_issued_on, CardIssuedOn::parse);
        checks.finish(|| {
            Some(Self {
                name: name?,
                card_number: card_number?,
                card_issued_on: card_issued_on?,
            })
        })
    }
}

impl ClientChanges {
    /// `current` with these changes.
    pub fn applied_to(&self, current: &Client) -> NewClient {
        NewClient {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| ClientName(current.name.clone())),
            card_number: self
                .card_number
                .clone()
                .unwrap_or_else(|| CardNumber(current.card_number.clone())),
            card_issued_on: self
                .card_issued_on
                .unwrap_or(CardIssuedOn(current.card_issued_on)),
        }
    }
}

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
}

/// A string field's schema: its rule in words and as JSON Schema, beside
/// the `parse` that enforces it.
fn string_schema(
    description: &str,
    min: usize,
    max: usize,
    pattern: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .into()
}

/// 1 to 200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(String);

impl utoipa::PartialSchema for ClientName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_schema(
            "1 to 200 characters once trimmed (stored trimmed); no control characters.",
            1,
            Self::MAX_CHARS,
            Self::PATTERN,
        )
    }
}
impl ToSchema for ClientName {}

impl ClientName {
    pub const MAX_CHARS: usize = 200;
    /// What [`parse`](Self::parse) takes, as a JSON Schema pattern: some
    /// character that is not a blank, and no control character.
    pub const PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

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

impl utoipa::PartialSchema for CardNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_schema(
            "1 to 32 of A-Z, a-z, 0-9 and `-`; unique among clients.",
            1,
            Self::MAX_CHARS,
            "^[A-Za-z0-9-]{1,32}$",
        )
    }
}
impl ToSchema for CardNumber {}

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

impl utoipa::PartialSchema for CardIssuedOn {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A real calendar date, from 1900-01-01, not in the future (UTC).",
            ))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .pattern(Some(r"^\d{4}-\d{2}-\d{2}$"))
            .into()
    }
}
impl ToSchema for CardIssuedOn {}

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

    fn input(body: Value) -> ClientInput {
        ClientInput::deserialize(&body).unwrap()
    }

    #[test]
    fn a_client_needs_every_field() {
        let body = json!({"name": "  Ada Lovelace ", "card_number": "C-1", "card_issued_on": "2020-01-01"});
        let client = NewClient::try_from(input(body)).unwrap();
        assert_eq!(client.name.as_str(), "Ada Lovelace");

        let Err(ApiError::Validation(errors)) = NewClient::try_from(input(json!({"name": ""})))
        else {
            panic!("expected 422");
        };
        assert_eq!(errors.len(), 3);
        assert!(
            NewClient::try_from(input(
                json!({"id": 5, "name": "x", "card_number": "1", "card_issued_on": "2020-01-01"})
            ))
            .is_ok()
        );
    }

    #[test]
    fn a_patch_changes_the_fields_it_sends() {
        let current = NewClient::try_from(input(
            json!({"name": "Ada", "card_number": "C-1", "card_issued_on": "2020-01-01"}),
        ))
        .unwrap()
        .stored(1, Utc::now());
        let patch = ClientPatch::deserialize(&json!({"card_number": "C-2"})).unwrap();
        let changed = ClientChanges::try_from(patch).unwrap().applied_to(&current);
        assert_eq!(changed.name.as_str(), "Ada");
        assert_eq!(changed.card_number.as_str(), "C-2");
        let removal = ClientPatch::deserialize(&json!({"name": null, "card_number": 5})).unwrap();
        let Err(ApiError::Validation(errors)) = ClientChanges::try_from(removal) else {
            panic!("expected 422");
        };
        assert_eq!(errors.len(), 2);
    }

    /// The pattern the document gives a name is what `parse` takes.
    #[test]
    fn the_documented_name_pattern_is_what_parse_takes() {
        let pattern = regex::Regex::new(ClientName::PATTERN).unwrap();
        for name in [
            "Ada", " Ada ", "", "   ", "a\u{7}b", "\u{85}", "Zoë Ω", "x\ty",
        ] {
            assert_eq!(
                pattern.is_match(name),
                ClientName::parse(&json!(name)).is_ok(),
                "{name:?}"
            );
        }
    }
}
