//! The order, parsed from JSON into types that can only hold valid values.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use kit_http::{
    ApiError,
    validate::{self, Checks, Member},
};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        KnownFormat, RefOr, Schema, SchemaFormat,
        schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type},
    },
};

// ANCHOR: order
/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    pub client_id: i64,
    pub item: String,
    pub quantity: i32,
    pub price: Price,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every update; sent as the `ETag`.
    pub version: i64,
}
// ANCHOR_END: order

/// The client's current details, as client_service returns them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientSummary {
    pub id: i64,
    pub name: String,
    pub card_number: String,
    pub card_issued_on: NaiveDate,
}

// ANCHOR: order_view
/// An order as the API returns it: with its client's current details, or
/// `null` when client_service cannot answer (or no longer has the client).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 1, "client_id": 1, "item": "Analytical Engine", "quantity": 1, "price": "12.50",
    "status": "new", "created_at": "2026-11-30T12:00:00Z", "updated_at": "2026-11-30T12:00:00Z",
    "client": {"id": 1, "name": "Ada Lovelace", "card_number": "AL-1815", "card_issued_on": "2020-02-29"}}))]
pub struct OrderView {
    pub id: i64,
    pub client_id: i64,
    pub item: String,
    pub quantity: i32,
    /// Two decimals, e.g. "12.50".
    #[schema(value_type = String, pattern = r"^[0-9]{1,10}\.[0-9]{2}$")]
    pub price: Price,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The client's current details; null when client_service cannot answer.
    pub client: Option<ClientSummary>,
}
// ANCHOR_END: order_view

impl OrderView {
    // ANCHOR: order_view_new
    pub fn new(order: Order, client: Option<ClientSummary>) -> Self {
        Self {
            id: order.id,
            client_id: order.client_id,
            item: order.item,
            quantity: order.quantity,
            price: order.price,
            status: order.status,
            created_at: order.created_at,
            updated_at: order.updated_at,
            client,
        }
    }
    // ANCHOR_END: order_view_new
}

// ANCHOR: order_input
/// The body of `POST /order/`: `quantity` and `status` have defaults. The
/// read-only fields a `GET` returns are accepted and ignored, so that a
/// client can send back what it got.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client_id": 1, "item": "Analytical Engine", "quantity": 1, "price": "12.50", "status": "new"}))]
pub struct OrderInput {
    #[serde(default)]
    #[schema(value_type = ClientRef, inline, required = true)]
    pub client_id: Member,
    #[serde(default)]
    #[schema(value_type = Item, inline, required = true)]
    pub item: Member,
    #[serde(default)]
    #[schema(schema_with = Quantity::schema_on_create)]
    pub quantity: Member,
    #[serde(default)]
    #[schema(value_type = Price, inline, required = true)]
    pub price: Member,
    /// `new` when not given on POST.
    #[serde(default)]
    #[schema(value_type = Option<OrderStatus>)]
    pub status: Member,
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
    /// Read-only: accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<serde_json::Value>)]
    pub client: Member,
}
// ANCHOR_END: order_input

/// The body of `PUT /order/{id}`: every writable field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client_id": 1, "item": "Difference Engine", "quantity": 2, "price": "99.90", "status": "paid"}))]
pub struct OrderReplace {
    #[serde(default)]
    #[schema(value_type = ClientRef, inline, required = true)]
    pub client_id: Member,
    #[serde(default)]
    #[schema(value_type = Item, inline, required = true)]
    pub item: Member,
    #[serde(default)]
    #[schema(value_type = Quantity, inline, required = true)]
    pub quantity: Member,
    #[serde(default)]
    #[schema(value_type = Price, inline, required = true)]
    pub price: Member,
    #[serde(default)]
    #[schema(value_type = OrderStatus, required = true)]
    pub status: Member,
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
    /// Read-only: accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<serde_json::Value>)]
    pub client: Member,
}

/// A JSON Merge Patch of an order (`PATCH /order/{id}`): only the fields
/// sent change; none can be removed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "paid"}))]
pub struct OrderPatch {
    #[serde(default)]
    #[schema(value_type = ClientRef, inline)]
    pub client_id: Member,
    #[serde(default)]
    #[schema(value_type = Item, inline)]
    pub item: Member,
    #[serde(default)]
    #[schema(value_type = Quantity, inline)]
    pub quantity: Member,
    #[serde(default)]
    #[schema(value_type = Price, inline)]
    pub price: Member,
    #[serde(default)]
    #[schema(value_type = OrderStatus)]
    pub status: Member,
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
    /// Read-only: accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<serde_json::Value>)]
    pub client: Member,
}

// ANCHOR: new_order
/// The writable fields of an order, each of its domain type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub client_id: i64,
    pub item: String,
    pub quantity: i32,
    pub price: Price,
    pub status: OrderStatus,
}
// ANCHOR_END: new_order

/// The changes of a merge patch, each checked (before the patch is
/// applied, and before the request's preconditions: see
/// docs/src/how-it-works/api.md#order-of-the-checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderChanges {
    client_id: Option<i64>,
    item: Option<String>,
    quantity: Option<i32>,
    price: Option<Price>,
    status: Option<OrderStatus>,
}

// ANCHOR: parse
impl TryFrom<OrderInput> for NewOrder {
    type Error = ApiError;

    /// POST: every field parsed, `quantity` 1 and `status` `new` when not
    /// given; every invalid field reported.
    fn try_from(input: OrderInput) -> Result<Self, ApiError> {
        let mut checks = Checks::new();
        let client_id = checks.required("client_id", &input.client_id, ClientRef::parse);
        let item = checks.required("item", &input.item, Item::parse);
        let quantity = checks.optional("quantity", &input.quantity, 1, Quantity::parse);
        let price = checks.required("price", &input.price, Price::parse);
        let status = checks.optional(
            "status",
            &input.status,
            OrderStatus::New,
            OrderStatus::parse,
        );
        checks.finish(|| {
            Some(Self {
                client_id: client_id?,
                item: item?,
                quantity: quantity?,
                price: price?,
                status: status?,
            })
        })
    }
}
// ANCHOR_END: parse

impl TryFrom<OrderReplace> for NewOrder {
    type Error = ApiError;

    /// PUT replaces the whole order: every field is required.
    fn try_from(input: OrderReplace) -> Result<Self, ApiError> {
        let mut checks = Checks::new();
        let client_id = checks.required("client_id", &input.client_id, ClientRef::parse);
        let item = checks.required("item", &input.item, Item::parse);
        let quantity = checks.required("quantity", &input.quantity, Quantity::parse);
        let price = checks.required("price", &input.price, Price::parse);
        let status = checks.required("status", &input.status, OrderStatus::parse);
        checks.finish(|| {
            Some(Self {
                client_id: client_id?,
                item: item?,
                quantity: quantity?,
                price: price?,
                status: status?,
            })
        })
    }
}

impl TryFrom<OrderPatch> for OrderChanges {
    type Error = ApiError;

    fn try_from(patch: OrderPatch) -> Result<Self, ApiError> {
        let mut checks = Checks::new();
        let client_id = checks.changed("client_id", &patch.client_id, ClientRef::parse);
        let item = checks.changed("item", &patch.item, Item::parse);
        let quantity = checks.changed("quantity", &patch.quantity, Quantity::parse);
        let price = checks.changed("price", &patch.price, Price::parse);
        let status = checks.changed("status", &patch.status, OrderStatus::parse);
        checks.finish(|| {
            Some(Self {
                client_id: client_id?,
                item: item?,
                quantity: quantity?,
                price: price?,
                status: status?,
            })
        })
    }
}

impl OrderChanges {
    /// `current` with these changes.
    pub fn applied_to(&self, current: &Order) -> NewOrder {
        NewOrder {
            client_id: self.client_id.unwrap_or(current.client_id),
            item: self.item.clone().unwrap_or_else(|| current.item.clone()),
            quantity: self.quantity.unwrap_or(current.quantity),
            price: self.price.unwrap_or(current.price),
            status: self.status.unwrap_or(current.status),
        }
    }
}

impl NewOrder {
    // ANCHOR: stored
    /// The order as it was just stored under `id`, at `now`: at version 1
    /// (the column's default), created and updated at `now`.
    pub fn stored(&self, id: i64, now: DateTime<Utc>) -> Order {
        Order {
            id,
            client_id: self.client_id,
            item: self.item.clone(),
            quantity: self.quantity,
            price: self.price,
            status: self.status,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }
    // ANCHOR_END: stored
}

/// `client_id`: the id of a client (whether it exists, client_service says).
pub struct ClientRef;

impl ClientRef {
    pub fn parse(value: &Value) -> Result<i64, String> {
        validate::integer_in(value, 1, i64::MAX)
    }
}

impl PartialSchema for ClientRef {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .description(Some("The id of an existing client of client_service."))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .into()
    }
}
impl ToSchema for ClientRef {}

/// `item`: what is ordered, 1 to 200 characters once trimmed, no control
/// characters.
pub struct Item;

impl Item {
    pub const MAX_CHARS: usize = 200;
    /// What [`parse`](Self::parse) takes, as a JSON Schema pattern: some
    /// character that is not a blank, and no control character.
    pub const PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

    pub fn parse(value: &Value) -> Result<String, String> {
        validate::text(value, Self::MAX_CHARS)
    }
}

impl PartialSchema for Item {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "1 to 200 characters once trimmed; no control characters.",
            ))
            .min_length(Some(1))
            .max_length(Some(Self::MAX_CHARS))
            .pattern(Some(Self::PATTERN))
            .into()
    }
}
impl ToSchema for Item {}

/// `quantity`: how many, 1 to 1 000 000.
pub struct Quantity;

impl Quantity {
    pub const MAX: i64 = 1_000_000;

    pub fn parse(value: &Value) -> Result<i32, String> {
        validate::integer_in(value, 1, Self::MAX)
            .and_then(|n| i32::try_from(n).map_err(|e| e.to_string()))
    }
}

impl Quantity {
    fn object() -> ObjectBuilder {
        ObjectBuilder::new()
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(1))
            .maximum(Some(Self::MAX))
    }

    /// On `POST`, where it may be left out or null: then 1.
    pub fn schema_on_create() -> Schema {
        Self::object()
            .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
            .description(Some("1 to 1000000; 1 when not given on POST."))
            .into()
    }
}

impl PartialSchema for Quantity {
    fn schema() -> RefOr<Schema> {
        Self::object()
            .schema_type(Type::Integer)
            .description(Some("1 to 1000000."))
            .into()
    }
}
impl ToSchema for Quantity {}

/// A non-negative amount with at most two fractional digits, held as a
/// whole number of cents: never a float, in memory or in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price {
    cents: i64,
}

impl Price {
    /// The largest accepted price, 1 000 000 000.00.
    pub const MAX_CENTS: i64 = 100_000_000_000;

    pub fn from_cents(cents: i64) -> Result<Self, String> {
        if (0..=Self::MAX_CENTS).contains(&cents) {
            Ok(Self { cents })
        } else {
            Err(format!(
                "must be from 0.00 to {}",
                Self {
                    cents: Self::MAX_CENTS
                }
            ))
        }
    }

    pub fn cents(self) -> i64 {
        self.cents
    }

    /// From a JSON string (`"12.50"`) or number (`12.5`).
    pub fn parse(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(text) => Self::parse_decimal(text),
            // Without serde_json's arbitrary precision a number arrives as an
            // f64; its shortest round-trip text is what the client wrote for
            // every price within range (at most 15 significant digits).
            Value::Number(number) => Self::parse_decimal(&number.to_string()),
            other => Err(format!(
                "must be a decimal number or a string like \"12.50\", not {}",
                validate::kind(other)
            )),
        }
    }

    fn parse_decimal(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!("`{text}` is not a non-negative amount with at most 2 decimals, like \"12.50\"")
        };
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 12 || !digits(whole) || !digits(fraction) {
            return Err(invalid());
        }
        if text.contains('.') && fraction.is_empty() || fraction.len() > 2 {
            return Err(invalid());
        }
        let whole: i64 = whole.parse().map_err(|_| invalid())?;
        let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
        let cents = whole
            .checked_mul(100)
            .and_then(|c| c.checked_add(fraction))
            .ok_or_else(invalid)?;
        Self::from_cents(cents)
    }
}

/// A price as accepted: a string like "12.50" or a number like 12.5.
impl PartialSchema for Price {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .pattern(Some(r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$"))
                    .examples(["12.50"]),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Number))
                    .minimum(Some(0.0))
                    .maximum(Some(1_000_000_000.0))
                    .multiple_of(Some(0.01))
                    .examples([12.5]),
            )
            .description(Some(
                "A non-negative amount with at most 2 decimals, at most 1000000000.00; a string or a number.",
            ))
            .into()
    }
}
impl ToSchema for Price {}

impl TryFrom<i64> for Price {
    type Error = String;
    fn try_from(cents: i64) -> Result<Self, String> {
        Self::from_cents(cents)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.cents / 100, self.cents % 100)
    }
}

/// Prices are returned as strings with two decimals: `"12.50"`.
impl Serialize for Price {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    New,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [Self; 5] = [
        Self::New,
        Self::Paid,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &Value) -> Result<Self, String> {
        let text = validate::string(value)?;
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                format!("must be one of new, paid, shipped, delivered, cancelled (got `{text}`)")
            })
    }
}

impl TryFrom<String> for OrderStatus {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&Value::String(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn price(v: Value) -> Result<String, String> {
        Price::parse(&v).map(|p| p.to_string())
    }

    #[test]
    fn prices_are_exact_with_two_decimals() {
        assert_eq!(price(json!("12.5")).unwrap(), "12.50");
        assert_eq!(price(json!("12.50")).unwrap(), "12.50");
        assert_eq!(price(json!("0")).unwrap(), "0.00");
        assert_eq!(price(json!(12.5)).unwrap(), "12.50");
        assert_eq!(price(json!(0.1)).unwrap(), "0.10");
        assert_eq!(price(json!(19.99)).unwrap(), "19.99");
        assert_eq!(price(json!(7)).unwrap(), "7.00");
        assert_eq!(price(json!("1000000000.00")).unwrap(), "1000000000.00");
        for bad in [
            json!("12.345"),
            json!(12.345),
            json!("-1"),
            json!(-1),
            json!("1e3"),
            json!("12."),
            json!(".5"),
            json!(" 12"),
            json!("12,50"),
            json!("abc"),
            json!(""),
            json!("1000000000.01"),
            json!(true),
            json!(null),
        ] {
            assert!(price(bad.clone()).is_err(), "{bad} accepted");
        }
    }

    fn create(body: &Value) -> Result<NewOrder, ApiError> {
        NewOrder::try_from(OrderInput::deserialize(body).expect("members"))
    }

    #[test]
    fn defaults_apply_on_create_but_replace_needs_every_field() {
        let body = json!({"client_id": 1, "item": "Tea", "price": "3.20"});
        let order = create(&body).unwrap();
        assert_eq!((order.quantity, order.status), (1, OrderStatus::New));
        let replace = OrderReplace::deserialize(&body).expect("members");
        let Err(ApiError::Validation(errors)) = NewOrder::try_from(replace) else {
            panic!("expected 422");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["quantity", "status"]);
    }

    // ANCHOR: every_field_is_checked
    #[test]
    fn every_field_is_checked() {
        let body = json!({"client_id": 0, "item": " ", "quantity": 1_000_001, "price": -1, "status": "lost"});
        let Err(ApiError::Validation(errors)) = create(&body) else {
            panic!("expected 422");
        };
        assert_eq!(errors.len(), 5);
        assert!(OrderStatus::parse(&json!("Paid")).is_err());
        assert_eq!(
            OrderStatus::parse(&json!("paid")).unwrap(),
            OrderStatus::Paid
        );
    }
    // ANCHOR_END: every_field_is_checked

    /// The pattern the document gives an item is what `parse` takes.
    #[test]
    fn the_documented_item_pattern_is_what_parse_takes() {
        let pattern = regex::Regex::new(Item::PATTERN).unwrap();
        for item in [
            "Tea",
            " Tea ",
            "",
            "   ",
            "a\u{7}b",
            "\u{85}",
            "Thé vert",
            "x\ty",
        ] {
            assert_eq!(
                pattern.is_match(item),
                Item::parse(&json!(item)).is_ok(),
                "{item:?}"
            );
        }
    }
}
