//! Message rendering through the public API: previews, SMS length, locales
//! and configuration errors. The exact texts are golden-tested in
//! `src/message/tests`.

use vericode::{
    Channel, ConfigError, Locale, MessageError, Messages, Purpose, SmsEncoding, TemplateError,
    TemplateKind, sms_length,
};

#[test]
fn preview_shows_each_channel() {
    let m = Messages::builder()
        .webotp("acme.example", None)
        .build()
        .unwrap();
    let p = Purpose::LoginNewDevice;
    let sms = m.preview(Locale::En, &p, &Channel::Sms, "Acme").unwrap();
    assert_eq!(
        sms.sms(),
        Some(
            "123456 is your Acme code to sign in from a new device. It expires in 10 minutes. \
             Never share this code.\n\n@acme.example #123456"
        )
    );
    assert_eq!(sms.email_html(), None);
    let voice = m.preview(Locale::De, &p, &Channel::Voice, "Acme").unwrap();
    assert!(
        voice
            .voice_script()
            .unwrap()
            .contains("lautet: 1, 2, 3, 4, 5, 6. Ich wiederhole: 1, 2, 3, 4, 5, 6.")
    );
    let mail = m.preview(Locale::Fr, &p, &Channel::Email, "A&B").unwrap();
    assert_eq!(mail.email_subject(), Some("Votre code de vérification A&B"));
    assert!(
        mail.email_html()
            .unwrap()
            .contains("<title>Votre code de vérification A&amp;B</title>")
    );
    assert!(mail.email_text().unwrap().contains("\n\n123456\n\n"));
}

#[test]
fn sms_that_cannot_fit_is_an_error() {
    let m = Messages::builder()
        .template(
            Locale::Pt,
            TemplateKind::SmsShort,
            None,
            "{app}: código {code}",
        )
        .build()
        .unwrap();
    let long_name = "N".repeat(60);
    let r = m.preview(Locale::Pt, &Purpose::StepUp, &Channel::Sms, &long_name);
    assert_eq!(
        r.unwrap_err(),
        MessageError::SmsTooLong {
            encoding: SmsEncoding::Ucs2,
            units: 75,
            limit: 70
        }
    );
}

#[test]
fn lengths_at_the_limits() {
    assert!(sms_length(&"x".repeat(160)).fits_one_segment());
    assert!(!sms_length(&"x".repeat(161)).fits_one_segment());
    assert!(sms_length(&"ã".repeat(70)).fits_one_segment());
    assert!(!sms_length(&"ã".repeat(71)).fits_one_segment());
    assert_eq!(sms_length("[x]").units(), 5);
}

#[test]
fn configuration_errors_at_build() {
    let e = Messages::builder()
        .template(Locale::Es, TemplateKind::Voice, None, "Hola de {app}")
        .build()
        .unwrap_err();
    assert_eq!(
        e,
        ConfigError::Template {
            locale: Locale::Es,
            kind: TemplateKind::Voice,
            purpose: None,
            error: TemplateError::MissingCode,
        }
    );
    let e = Messages::builder()
        .webotp("acme.example:443", None)
        .build()
        .unwrap_err();
    assert!(matches!(e, ConfigError::AutofillHost(_)));
    assert_eq!(Locale::parse("pt-BR"), Ok(Locale::Pt));
    assert!(Locale::parse("it").is_err());
}
