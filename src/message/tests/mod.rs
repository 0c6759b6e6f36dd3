//! Tests of message rendering: golden texts in every locale (`golden`), and
//! segment limits, autofill, escaping and configuration checks (`rules`,
//! `check`).

mod check;
mod golden;
mod rules;

use super::*;

/// Renders with the app "Acme", the code 123456 and 10 minutes.
fn render(m: &Messages, locale: Locale, purpose: &Purpose, channel: &Channel) -> Rendered {
    m.render(locale, purpose, channel, "Acme", "123456", 10)
        .expect("renders")
}

fn custom() -> Purpose {
    Purpose::custom("wire_transfer").unwrap()
}
