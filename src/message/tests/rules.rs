//! Segment limits, autofill lines, escaping, overrides and build-time checks.

use super::*;

fn sms_with(template: &str) -> Result<Rendered, MessageError> {
    let m = Messages::builder()
        .template(Locale::En, TemplateKind::Sms, None, template)
        .template(Locale::En, TemplateKind::SmsShort, None, "short {code}")
        .build()
        .unwrap();
    m.render(
        Locale::En,
        &Purpose::StepUp,
        &Channel::Sms,
        "Acme",
        "123456",
        10,
    )
}

fn sent(template: &str) -> String {
    sms_with(template).unwrap().sms().unwrap().to_owned()
}

#[test]
fn gsm7_160_fits_161_falls_back_to_the_short_text() {
    let t160 = format!("{}{{code}}", "a".repeat(154));
    assert_eq!(sent(&t160), format!("{}123456", "a".repeat(154)));
    let t161 = format!("{}{{code}}", "a".repeat(155));
    assert_eq!(sent(&t161), "short 123456");
}

#[test]
fn extension_characters_count_twice() {
    // 152 + 2 (€) + 6 = 160 septets; one more character is 161.
    let t160 = format!("{}€{{code}}", "a".repeat(152));
    assert_eq!(sent(&t160), format!("{}€123456", "a".repeat(152)));
    let t161 = format!("{}€{{code}}", "a".repeat(153));
    assert_eq!(sent(&t161), "short 123456");
    // {{ and }} are literal braces: extension characters too.
    let braces = format!("{}{{{{{{code}}}}}}", "a".repeat(150));
    assert_eq!(sent(&braces), format!("{}{{123456}}", "a".repeat(150)));
    let braces = format!("{}{{{{{{code}}}}}}", "a".repeat(151));
    assert_eq!(sent(&braces), "short 123456");
}

#[test]
fn ucs2_70_fits_71_falls_back_to_the_short_text() {
    let t70 = format!("ó{}{{code}}", "a".repeat(63));
    let r = sms_with(&t70).unwrap();
    assert_eq!(r.sms(), Some(format!("ó{}123456", "a".repeat(63)).as_str()));
    let len = r.sms_length().unwrap();
    assert_eq!(
        (len.encoding(), len.units(), len.limit()),
        (SmsEncoding::Ucs2, 70, 70)
    );
    let t71 = format!("ó{}{{code}}", "a".repeat(64));
    assert_eq!(sent(&t71), "short 123456");
}

#[test]
fn too_long_even_when_short_is_a_typed_error() {
    let m = Messages::builder()
        .template(
            Locale::En,
            TemplateKind::Sms,
            None,
            "ó {code} {app} {action}",
        )
        .template(Locale::En, TemplateKind::SmsShort, None, "ó {code} {app}")
        .build()
        .unwrap();
    let app = "a".repeat(62);
    let r = m.render(
        Locale::En,
        &Purpose::StepUp,
        &Channel::Sms,
        &app,
        "123456",
        10,
    );
    assert_eq!(
        r.unwrap_err(),
        MessageError::SmsTooLong {
            encoding: SmsEncoding::Ucs2,
            units: 71,
            limit: 70
        }
    );
    // Other channels have no segment limit.
    let chat = Channel::custom("chat").unwrap();
    let r = m.render(Locale::En, &Purpose::StepUp, &chat, &app, "123456", 10);
    assert!(r.unwrap().text().contains(&app));
}

#[test]
fn autofill_lines_exact_and_counted() {
    let sms = |b: MessagesBuilder| {
        let m = b.build().unwrap();
        render(&m, Locale::En, &Purpose::PasswordReset, &Channel::Sms)
            .sms()
            .unwrap()
            .to_owned()
    };
    let text = "123456 is your Acme code to reset your password. It expires in 10 minutes. \
                Never share this code.";
    assert_eq!(sms(Messages::builder()), text);
    assert_eq!(
        sms(Messages::builder().webotp("acme.example", None)),
        format!("{text}\n\n@acme.example #123456")
    );
    assert_eq!(
        sms(Messages::builder().webotp("acme.example", Some("pay.acme.example"))),
        format!("{text}\n\n@acme.example #123456 @pay.acme.example")
    );
    assert_eq!(
        sms(Messages::builder().android_app_hash("FA+9qCX9VSu")),
        format!("{text}\n\nFA+9qCX9VSu")
    );
    assert_eq!(
        sms(Messages::builder()
            .android_app_hash("FA+9qCX9VSu")
            .webotp("acme.example", None)),
        format!("{text}\n\nFA+9qCX9VSu\n@acme.example #123456")
    );
    // The line counts toward the segment: 160 septets without it is too long with it.
    let t160 = format!("{}{{code}}", "a".repeat(154));
    let m = Messages::builder()
        .template(Locale::En, TemplateKind::Sms, None, &t160)
        .webotp("a.example", None)
        .build()
        .unwrap();
    let r = render(&m, Locale::En, &Purpose::StepUp, &Channel::Sms);
    assert_eq!(
        r.sms(),
        Some(
            "123456 is your Acme code. It expires in 10 min. Never share this code.\n\n\
             @a.example #123456"
        )
    );
    // Only SMS gets autofill lines.
    for ch in [
        Channel::Email,
        Channel::Voice,
        Channel::custom("chat").unwrap(),
    ] {
        assert!(
            !render(&m, Locale::En, &Purpose::StepUp, &ch)
                .text()
                .contains('@')
        );
    }
}

#[test]
fn hostile_values_are_escaped_in_html_only() {
    let m = Messages::builder()
        .action_phrase(Locale::En, custom(), "approve <b>\"this\"</b> & 'that'")
        .build()
        .unwrap();
    let app = "<script>alert(\"x\")</script> & 'Co'";
    let code = "<&>'\"1"; // a custom alphabet may have these
    let r = m
        .render(Locale::En, &custom(), &Channel::Email, app, code, 10)
        .unwrap();
    let html = r.email_html().unwrap();
    assert!(html.contains(
        "<title>Your &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Co&#39; \
         verification code</title>"
    ));
    assert!(html.contains(
        "<p>Here is your &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;Co&#39; code \
         to approve &lt;b&gt;&quot;this&quot;&lt;/b&gt; &amp; &#39;that&#39;:</p>"
    ));
    assert!(html.contains(">&lt;&amp;&gt;&#39;&quot;1</p>"));
    assert!(!html.contains("<script") && !html.contains("<b>") && !html.contains("<&>"));
    // Plain text and the subject are not HTML: they carry the values as they are.
    assert_eq!(
        r.email_subject(),
        Some(format!("Your {app} verification code").as_str())
    );
    assert!(r.email_text().unwrap().contains(code));
}

#[test]
fn overrides_by_purpose_then_locale_then_built_in() {
    let m = Messages::builder()
        .template(Locale::En, TemplateKind::Sms, None, "all: {code} {action}")
        .template(
            Locale::En,
            TemplateKind::Sms,
            Some(custom()),
            "wire: {code} for {app}, {minutes} min",
        )
        .action_phrase(Locale::En, Purpose::StepUp, "approve this payment")
        .build()
        .unwrap();
    let sms = |l, p: &Purpose| render(&m, l, p, &Channel::Sms).sms().unwrap().to_owned();
    assert_eq!(sms(Locale::En, &custom()), "wire: 123456 for Acme, 10 min");
    assert_eq!(
        sms(Locale::En, &Purpose::StepUp),
        "all: 123456 approve this payment"
    );
    assert_eq!(
        sms(Locale::En, &Purpose::PasswordReset),
        "all: 123456 reset your password"
    );
    assert!(sms(Locale::Fr, &custom()).starts_with("123456 est votre code Acme pour vérifier"));
}

#[test]
fn locales_restrict_and_fall_back_to_the_first() {
    let m = Messages::builder()
        .locales(Locale::De, &[Locale::Fr])
        .build()
        .unwrap();
    let sms = |l| {
        render(&m, l, &Purpose::StepUp, &Channel::Sms)
            .sms()
            .unwrap()
            .to_owned()
    };
    assert!(sms(Locale::En).starts_with("Acme: Ihr Code"));
    assert!(sms(Locale::Es).starts_with("Acme: Ihr Code"));
    assert!(sms(Locale::Fr).starts_with("123456 est votre code"));
}

#[test]
fn bad_templates_are_refused_at_build() {
    let build = |kind, text: &str| {
        Messages::builder()
            .template(Locale::Fr, kind, Some(Purpose::StepUp), text)
            .build()
            .unwrap_err()
    };
    let err = |kind, error| ConfigError::Template {
        locale: Locale::Fr,
        kind,
        purpose: Some(Purpose::StepUp),
        error,
    };
    for kind in [
        TemplateKind::Sms,
        TemplateKind::SmsShort,
        TemplateKind::EmailText,
        TemplateKind::EmailHtml,
        TemplateKind::Voice,
    ] {
        assert_eq!(
            build(kind, "Votre code"),
            err(kind, TemplateError::MissingCode)
        );
    }
    let kind = TemplateKind::EmailSubject;
    assert_eq!(
        build(kind, "Code {app} {expires}"),
        err(kind, TemplateError::UnknownPlaceholder("expires".into()))
    );
    assert_eq!(
        build(kind, "Code {app"),
        err(kind, TemplateError::UnbalancedBrace { offset: 5 })
    );
    assert_eq!(
        build(kind, "Code } {app}"),
        err(kind, TemplateError::UnbalancedBrace { offset: 5 })
    );
    let e = build(TemplateKind::Sms, "{code} {cde}");
    assert_eq!(
        e.to_string(),
        "the sms template for fr (step_up) is not valid: unknown placeholder {cde}; \
         use app, code, action, minutes or duration"
    );
}

#[test]
fn bad_phrases_hosts_and_hashes_are_refused_at_build() {
    for bad in ["", "  ", "line\nbreak", &"x".repeat(81)] {
        let r = Messages::builder()
            .action_phrase(Locale::Es, custom(), bad)
            .build();
        assert_eq!(
            r.unwrap_err(),
            ConfigError::ActionPhrase {
                locale: Locale::Es,
                purpose: custom()
            }
        );
    }
    assert!(
        Messages::builder()
            .action_phrase(Locale::Es, custom(), &"x".repeat(80))
            .build()
            .is_ok()
    );
    let r = Messages::builder()
        .webotp("https://acme.example", None)
        .build();
    assert_eq!(
        r.unwrap_err(),
        ConfigError::AutofillHost("https://acme.example".into())
    );
    let r = Messages::builder()
        .webotp("acme.example", Some("Pay.example"))
        .build();
    assert_eq!(
        r.unwrap_err(),
        ConfigError::AutofillHost("Pay.example".into())
    );
    let r = Messages::builder().android_app_hash("FA+9qCX9VS").build();
    assert_eq!(r.unwrap_err(), ConfigError::AppHash);
}

#[test]
fn debug_never_shows_the_code() {
    let m = Messages::builder()
        .webotp("acme.example", None)
        .build()
        .unwrap();
    for ch in [Channel::Sms, Channel::Email, Channel::Voice] {
        let r = render(&m, Locale::En, &Purpose::StepUp, &ch);
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("123456") && !dbg.contains("1, 2"), "{dbg}");
    }
    assert!(!format!("{m:?}").contains("{code}"));
}
