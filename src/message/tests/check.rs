//! The build-time check that every SMS fits one segment.

use super::*;

#[test]
fn check_passes_the_worst_case_by_default() {
    // A 12-character name, 8-character codes, a day's lifetime: every locale fits.
    Messages::default().check("Acme Bank 12", 8, 1440).unwrap();
    let both = Messages::builder()
        .webotp("acme.example", Some("pay.acme.example"))
        .android_app_hash("FA+9qCX9VSu")
        .locales(Locale::En, &[Locale::De, Locale::Fr])
        .build()
        .unwrap();
    both.check("Acme Bank 12", 8, 1440).unwrap();
    // As documented: en, de, fr fit both lines with a 45-character host.
    let host = format!("{}.example", "h".repeat(37));
    let long_host = Messages::builder()
        .webotp(&host, None)
        .android_app_hash("FA+9qCX9VSu")
        .locales(Locale::En, &[Locale::De, Locale::Fr])
        .build()
        .unwrap();
    long_host.check("Acme Bank 12", 8, 9999).unwrap();
    // es and pt fit the app hash while name, code and minutes have at most
    // 14 (es) and 12 (pt) characters.
    let hash = Messages::builder()
        .android_app_hash("FA+9qCX9VSu")
        .build()
        .unwrap();
    hash.check("Acme", 6, 10).unwrap();
    let e = hash.check("Acme1", 6, 10).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::SmsTooLong {
                locale: Locale::Pt,
                units: 71,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn check_names_the_locale_and_purpose_that_cannot_fit() {
    let m = Messages::builder()
        .webotp("acme.example", None)
        .build()
        .unwrap();
    assert_eq!(
        m.check("Acme", 6, 10),
        Err(ConfigError::SmsTooLong {
            locale: Locale::Es,
            purpose: Some(Purpose::LoginNewDevice),
            units: 78, // 55 + "\n\n@acme.example #123456"
            limit: 70
        })
    );
    // A long app name breaks even the defaults.
    let e = Messages::default()
        .check(&"A".repeat(64), 6, 10)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::SmsTooLong {
                locale: Locale::Es,
                ..
            }
        ),
        "{e:?}"
    );
    // A custom purpose's own short template is checked too.
    let m = Messages::builder()
        .template(
            Locale::En,
            TemplateKind::SmsShort,
            Some(custom()),
            "{code} {action}",
        )
        .template(
            Locale::En,
            TemplateKind::Sms,
            Some(custom()),
            "{code} {action}",
        )
        .action_phrase(Locale::En, custom(), &"€".repeat(80))
        .locales(Locale::En, &[])
        .build()
        .unwrap();
    assert_eq!(
        m.check("Acme", 6, 10),
        Err(ConfigError::SmsTooLong {
            locale: Locale::En,
            purpose: Some(custom()),
            units: 167,
            limit: 160
        })
    );
}
