//! What the forms that change something share: the fields of a form as a
//! page shows them (with the API's errors next to them), the form page,
//! and the API's answers to a write turned into pages.

use askama::Template;
use axum::{http::StatusCode, response::Response};

use crate::{
    api::Answer,
    pages::{Chrome, Notice, PageError, render},
    person::Person,
};

/// One field of a form, as shown: its value, and the API's word on it.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    /// The input's `type`, or `select`.
    pub kind: &'static str,
    pub value: String,
    pub hint: Option<&'static str>,
    pub options: Vec<&'static str>,
    pub error: Option<String>,
}

impl Field {
    pub fn new(name: &'static str, label: &'static str, kind: &'static str, value: &str) -> Self {
        Self {
            name,
            label,
            kind,
            value: value.to_owned(),
            hint: None,
            options: Vec::new(),
            error: None,
        }
    }

    pub fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub fn select(mut self, options: &[&'static str]) -> Self {
        self.kind = "select";
        self.options = options.to_vec();
        self
    }
}

/// The problem's field errors put next to their fields; those that name
/// no field of the form are returned, for the page's problem.
pub fn mark(fields: &mut [Field], answer: &Answer) -> Vec<String> {
    let mut unplaced = Vec::new();
    for error in answer.field_errors() {
        let message = sentence(&error.message);
        match fields.iter_mut().find(|f| f.name == error.field) {
            Some(field) => field.error = Some(message),
            None => unplaced.push(format!("{}: {message}", error.field)),
        }
    }
    unplaced
}

/// The API's message as a sentence: capitalised, with a full stop.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut text: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

/// The page's problem for an answer that is a validation error.
pub fn invalid(answer: &Answer, unplaced: Vec<String>) -> Notice {
    let mut text = "Nothing was saved: correct the fields marked below.".to_owned();
    for extra in unplaced {
        text.push(' ');
        text.push_str(&extra);
    }
    if answer.field_errors().is_empty() {
        text = format!("Nothing was saved: {}", answer.detail());
    }
    Notice::new(text, answer.request_id.clone())
}

/// A form page: a client's, or an order's (see `orders`).
#[derive(Template)]
#[template(path = "form.html")]
pub struct FormPage {
    pub chrome: Chrome,
    pub title: String,
    pub action: String,
    pub back: String,
    pub submit: &'static str,
    pub hidden: Vec<(&'static str, String)>,
    pub fields: Vec<Field>,
    /// What the person tried, when someone else's change came first.
    pub tried: Vec<(&'static str, String)>,
    pub chooser: Option<Chooser>,
}

/// The create form's choice of a client, found by the start of its name.
#[derive(Clone, Debug, Default)]
pub struct Chooser {
    pub query: String,
    pub clients: Vec<Choice>,
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Choice {
    pub id: i64,
    pub name: String,
    pub card_number: String,
    pub chosen: bool,
}

/// A write the API refused: the form again with its errors when the fields
/// were at fault (422, or a card number another client has: 409), an
/// error page otherwise.
pub fn refused_form(
    person: &Person,
    mut page: FormPage,
    answer: Answer,
    service: &str,
) -> Response {
    match answer.status {
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT | StatusCode::BAD_REQUEST => {
            let mut unplaced = mark(&mut page.fields, &answer);
            if let Some(chooser) = &mut page.chooser {
                unplaced.retain(|message| {
                    let about_client = message.starts_with("client_id:");
                    if about_client {
                        chooser.error = Some(message["client_id:".len()..].trim().to_owned());
                    }
                    !about_client
                });
            }
            if answer.status == StatusCode::CONFLICT && answer.field_errors().is_empty() {
                // The 409 of a card number another client has names no field.
                if let Some(field) = page.fields.iter_mut().find(|f| f.name == "card_number") {
                    field.error = Some(answer.detail());
                }
            }
            page.chrome.problem = Some(invalid(&answer, unplaced));
            render(answer.status, &page)
        }
        _ => person.fail(PageError::of_answer(answer, service, "This record")),
    }
}

/// The problem of an edit that lost to someone else's (a 412).
pub fn conflict(answer: &Answer, version: i64) -> Notice {
    Notice::new(
        format!(
            "This record was changed by someone else since you opened the form, and nothing \
             was saved. The form now shows the current values (version {version}); make your \
             change again and save."
        ),
        answer.request_id.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apis_messages_become_sentences() {
        assert_eq!(sentence("must not be empty"), "Must not be empty.");
        assert_eq!(sentence("Is taken."), "Is taken.");
    }
}
