//! Golden tests: the exact built-in texts.

use super::*;

const EN_SMS: [(&str, &str); 5] = [
    (
        "login_new_device",
        "123456 is your Acme code to sign in from a new device. It expires in 10 minutes. Never share this code.",
    ),
    (
        "credential_change",
        "123456 is your Acme code to confirm a change to your account. It expires in 10 minutes. Never share this code.",
    ),
    (
        "step_up",
        "123456 is your Acme code to confirm it's you. It expires in 10 minutes. Never share this code.",
    ),
    (
        "password_reset",
        "123456 is your Acme code to reset your password. It expires in 10 minutes. Never share this code.",
    ),
    (
        "wire_transfer",
        "123456 is your Acme code to verify it's you. It expires in 10 minutes. Never share this code.",
    ),
];

/// The English action phrases as they appear in text and, escaped, in HTML.
const EN_ACTIONS: [(&str, &str); 5] = [
    ("sign in from a new device", "sign in from a new device"),
    (
        "confirm a change to your account",
        "confirm a change to your account",
    ),
    ("confirm it's you", "confirm it&#39;s you"),
    ("reset your password", "reset your password"),
    ("verify it's you", "verify it&#39;s you"),
];

fn purposes() -> [Purpose; 5] {
    [
        Purpose::LoginNewDevice,
        Purpose::CredentialChange,
        Purpose::StepUp,
        Purpose::PasswordReset,
        custom(),
    ]
}

#[test]
fn english_every_purpose_every_channel() {
    let m = Messages::default();
    for (i, p) in purposes().iter().enumerate() {
        let (name, sms) = EN_SMS[i];
        assert_eq!(p.as_str(), name);
        let (action, action_html) = EN_ACTIONS[i];
        let r = render(&m, Locale::En, p, &Channel::Sms);
        assert_eq!(r.sms(), Some(sms), "{p}");
        assert_eq!(r.sms_length().unwrap().encoding(), SmsEncoding::Gsm7);

        let r = render(&m, Locale::En, p, &Channel::Email);
        assert_eq!(r.email_subject(), Some("Your Acme verification code"));
        assert_eq!(
            r.email_text().unwrap(),
            format!(
                "Here is your Acme code to {action}:\n\n123456\n\n\
                 It expires in 10 minutes. Never share this code with anyone.\n\n\
                 If you did not ask for this code, you can ignore this email."
            )
        );
        assert_eq!(
            r.email_html().unwrap(),
            format!(
                "<!DOCTYPE html>\n<html lang=\"en\">\n\
                 <head><meta charset=\"utf-8\"><title>Your Acme verification code</title></head>\n\
                 <body>\n<p>Here is your Acme code to {action_html}:</p>\n\
                 <p style=\"font-size:24px;font-weight:bold;letter-spacing:4px\">123456</p>\n\
                 <p>It expires in 10 minutes. Never share this code with anyone.</p>\n\
                 <p>If you did not ask for this code, you can ignore this email.</p>\n\
                 </body>\n</html>\n"
            )
        );

        let r = render(&m, Locale::En, p, &Channel::Voice);
        assert_eq!(
            r.voice_script().unwrap(),
            format!(
                "Hello, this is Acme. Here is your code to {action}: 1, 2, 3, 4, 5, 6. \
                 Again, your code is: 1, 2, 3, 4, 5, 6. It expires in 10 minutes. Never share this code."
            )
        );
    }
}

/// One purpose per locale, every text.
struct Golden {
    locale: Locale,
    purpose: Purpose,
    sms: &'static str,
    subject: &'static str,
    text: &'static str,
    html_lines: [&'static str; 4],
    voice: &'static str,
    /// The full SMS text, sent on custom channels (es and pt are too long for
    /// one UCS-2 segment, so their SMS is the short text).
    custom_channel: &'static str,
}

fn goldens() -> Vec<Golden> {
    vec![
        Golden {
            locale: Locale::Es,
            purpose: Purpose::PasswordReset,
            sms: "Acme: código 123456. Caduca en 10 min. No lo compartas.",
            subject: "Tu código de verificación de Acme",
            text: "Este es tu código de Acme para restablecer tu contraseña:\n\n123456\n\n\
                   Caduca en 10 minutos. No compartas este código con nadie.\n\n\
                   Si no solicitaste este código, puedes ignorar este correo.",
            html_lines: [
                "<p>Este es tu código de Acme para restablecer tu contraseña:</p>",
                "<p>Caduca en 10 minutos. No compartas este código con nadie.</p>",
                "<p>Si no solicitaste este código, puedes ignorar este correo.</p>",
                "<title>Tu código de verificación de Acme</title>",
            ],
            voice: "Hola, te llamamos de Acme. Este es tu código para restablecer tu contraseña: \
                    1, 2, 3, 4, 5, 6. Repito: 1, 2, 3, 4, 5, 6. Caduca en 10 minutos. \
                    No compartas este código con nadie.",
            custom_channel: "123456 es tu código de Acme para restablecer tu contraseña. \
                             Caduca en 10 minutos. No compartas este código con nadie.",
        },
        Golden {
            locale: Locale::De,
            purpose: Purpose::LoginNewDevice,
            sms: "Acme: Ihr Code zur Anmeldung auf einem neuen Gerät lautet 123456. \
                  Er ist 10 Minuten gültig. Geben Sie diesen Code niemals weiter.",
            subject: "Ihr Bestätigungscode für Acme",
            text: "Ihr Code zur Anmeldung auf einem neuen Gerät bei Acme lautet:\n\n123456\n\n\
                   Er ist 10 Minuten gültig. Geben Sie diesen Code niemals weiter.\n\n\
                   Wenn Sie diesen Code nicht angefordert haben, können Sie diese E-Mail ignorieren.",
            html_lines: [
                "<p>Ihr Code zur Anmeldung auf einem neuen Gerät bei Acme lautet:</p>",
                "<p>Er ist 10 Minuten gültig. Geben Sie diesen Code niemals weiter.</p>",
                "<p>Wenn Sie diesen Code nicht angefordert haben, können Sie diese E-Mail ignorieren.</p>",
                "<title>Ihr Bestätigungscode für Acme</title>",
            ],
            voice: "Hallo, hier ist Acme. Ihr Code zur Anmeldung auf einem neuen Gerät lautet: \
                    1, 2, 3, 4, 5, 6. Ich wiederhole: 1, 2, 3, 4, 5, 6. Er ist 10 Minuten gültig. \
                    Geben Sie diesen Code niemals weiter.",
            custom_channel: "Acme: Ihr Code zur Anmeldung auf einem neuen Gerät lautet 123456. \
                             Er ist 10 Minuten gültig. Geben Sie diesen Code niemals weiter.",
        },
        Golden {
            locale: Locale::Fr,
            purpose: Purpose::CredentialChange,
            sms: "123456 est votre code Acme pour confirmer une modification de votre compte. \
                  Il expire dans 10 minutes. Ne partagez jamais ce code.",
            subject: "Votre code de vérification Acme",
            text: "Voici votre code Acme pour confirmer une modification de votre compte :\n\n123456\n\n\
                   Il expire dans 10 minutes. Ne partagez ce code avec personne.\n\n\
                   Si vous n'avez pas demandé ce code, vous pouvez ignorer cet e-mail.",
            html_lines: [
                "<p>Voici votre code Acme pour confirmer une modification de votre compte :</p>",
                "<p>Il expire dans 10 minutes. Ne partagez ce code avec personne.</p>",
                "<p>Si vous n'avez pas demandé ce code, vous pouvez ignorer cet e-mail.</p>",
                "<title>Votre code de vérification Acme</title>",
            ],
            voice: "Bonjour, ici Acme. Voici votre code pour confirmer une modification de votre compte : \
                    1, 2, 3, 4, 5, 6. Je répète : 1, 2, 3, 4, 5, 6. Il expire dans 10 minutes. \
                    Ne partagez ce code avec personne.",
            custom_channel: "123456 est votre code Acme pour confirmer une modification de votre compte. \
                             Il expire dans 10 minutes. Ne partagez jamais ce code.",
        },
        Golden {
            locale: Locale::Pt,
            purpose: Purpose::StepUp,
            sms: "Acme: código 123456. Expira em 10 min. Nunca compartilhe.",
            subject: "Acme: seu código de verificação",
            text: "Este é seu código Acme para confirmar que é você:\n\n123456\n\n\
                   Ele expira em 10 minutos. Nunca compartilhe este código com ninguém.\n\n\
                   Se você não pediu este código, pode ignorar este e-mail.",
            html_lines: [
                "<p>Este é seu código Acme para confirmar que é você:</p>",
                "<p>Ele expira em 10 minutos. Nunca compartilhe este código com ninguém.</p>",
                "<p>Se você não pediu este código, pode ignorar este e-mail.</p>",
                "<title>Acme: seu código de verificação</title>",
            ],
            voice: "Olá, aqui é Acme. Este é seu código para confirmar que é você: \
                    1, 2, 3, 4, 5, 6. Repetindo: 1, 2, 3, 4, 5, 6. Ele expira em 10 minutos. \
                    Nunca compartilhe este código com ninguém.",
            custom_channel: "123456 é seu código Acme para confirmar que é você. \
                             Expira em 10 minutos. Nunca compartilhe este código.",
        },
    ]
}

#[test]
fn one_purpose_in_every_other_locale() {
    let m = Messages::default();
    for g in goldens() {
        let (l, p) = (g.locale, &g.purpose);
        assert_eq!(render(&m, l, p, &Channel::Sms).sms(), Some(g.sms), "{l}");
        let mail = render(&m, l, p, &Channel::Email);
        assert_eq!(mail.email_subject(), Some(g.subject), "{l}");
        assert_eq!(mail.email_text(), Some(g.text), "{l}");
        let [intro, expiry, ignore, title] = g.html_lines;
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"{l}\">\n<head><meta charset=\"utf-8\">{title}</head>\n\
             <body>\n{intro}\n\
             <p style=\"font-size:24px;font-weight:bold;letter-spacing:4px\">123456</p>\n\
             {expiry}\n{ignore}\n</body>\n</html>\n"
        );
        assert_eq!(mail.email_html(), Some(html.as_str()), "{l}");
        let voice = render(&m, l, p, &Channel::Voice);
        assert_eq!(voice.voice_script(), Some(g.voice), "{l}");
        let chat = Channel::custom("chat").unwrap();
        assert_eq!(render(&m, l, p, &chat).text(), g.custom_channel, "{l}");
    }
}

#[test]
fn short_sms_in_every_locale() {
    // 80 euro signs (160 septets) push the full text past one segment everywhere.
    let long = "€".repeat(80);
    let mut b = Messages::builder();
    for &l in Locale::ALL {
        b = b.action_phrase(l, custom(), &long);
    }
    let m = b.build().unwrap();
    let want = [
        (
            Locale::En,
            "123456 is your Acme code. It expires in 10 min. Never share this code.",
        ),
        (
            Locale::Es,
            "Acme: código 123456. Caduca en 10 min. No lo compartas.",
        ),
        (
            Locale::De,
            "Acme: Ihr Code lautet 123456. Gültig für 10 Min. Geben Sie ihn niemals weiter.",
        ),
        (
            Locale::Fr,
            "Code Acme : 123456. Expire dans 10 min. Ne le partagez avec personne.",
        ),
        (
            Locale::Pt,
            "Acme: código 123456. Expira em 10 min. Nunca compartilhe.",
        ),
    ];
    for (l, text) in want {
        assert_eq!(
            render(&m, l, &custom(), &Channel::Sms).sms(),
            Some(text),
            "{l}"
        );
    }
}

#[test]
fn one_minute_is_singular() {
    let m = Messages::default();
    let p = Purpose::PasswordReset;
    for (l, words) in [
        (Locale::En, "in 1 minute."),
        (Locale::Es, "en 1 minuto."),
        (Locale::De, "ist 1 Minute gültig"),
        (Locale::Fr, "dans 1 minute."),
        (Locale::Pt, "em 1 minuto."),
    ] {
        let r = m
            .render(l, &p, &Channel::Email, "Acme", "123456", 1)
            .unwrap();
        assert!(r.email_text().unwrap().contains(words), "{l}");
        let r = m
            .render(l, &p, &Channel::Voice, "Acme", "123456", 1)
            .unwrap();
        assert!(r.voice_script().unwrap().contains(words), "{l}");
    }
}

#[test]
fn every_text_names_sender_code_expiry_and_never_share() {
    let m = Messages::default();
    let never = [
        (Locale::En, "Never share"),
        (Locale::Es, "compartas"),
        (Locale::De, "niemals weiter"),
        (Locale::Fr, "partagez"),
        (Locale::Pt, "Nunca compartilhe"),
    ];
    for (l, never) in never {
        for p in purposes() {
            for ch in [Channel::Sms, Channel::Email, Channel::Voice] {
                let r = render(&m, l, &p, &ch);
                let code = if ch == Channel::Voice {
                    "1, 2, 3, 4, 5, 6"
                } else {
                    "123456"
                };
                for text in [Some(r.text()), r.email_html()].into_iter().flatten() {
                    for part in ["Acme", code, "10 ", never] {
                        assert!(text.contains(part), "{l} {p} {ch}: {part}");
                    }
                }
                if ch == Channel::Voice {
                    assert_eq!(r.text().matches(code).count(), 2, "{l} {p}: said twice");
                }
                if ch == Channel::Sms {
                    let gsm = !matches!(l, Locale::Es | Locale::Pt);
                    let enc = r.sms_length().unwrap().encoding();
                    assert_eq!(enc == SmsEncoding::Gsm7, gsm, "{l} {p}");
                }
            }
        }
    }
}
