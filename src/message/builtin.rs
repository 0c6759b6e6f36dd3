//! The built-in texts: one set per [`Locale`], written for people who did not
//! expect a message and must be able to tell at a glance who sent it, what it
//! is for, how long it lasts, and that they must never share it.
//!
//! SMS texts in English, German and French use only the GSM-7 alphabet (é, è,
//! à, ä, ö, ü, ß are in it; French avoids ç, ê, â, î, ô, û), so they get 160
//! septets. Spanish and Portuguese cannot be written naturally without á, í,
//! ó, ú, ã, ç…, so they are UCS-2 (70 units): their full SMS text is for
//! custom channels, and SMS sends their short text.

use super::Locale;
use super::template::TemplateKind;
use crate::purpose::Purpose;

/// One locale's texts. The action phrases fill `{action}`; each locale's
/// phrases fit one grammatical slot (see [`super::Messages`]).
struct Texts {
    sms: &'static str,
    sms_short: &'static str,
    subject: &'static str,
    /// The email's opening line, before the code.
    intro: &'static str,
    /// Expiry and "never share", after the code.
    expiry: &'static str,
    /// What to do if the person did not ask for a code.
    ignore: &'static str,
    voice: &'static str,
    /// Login from a new device, credential change, step-up, password reset,
    /// and any custom purpose without a phrase of its own.
    actions: [&'static str; 5],
    minute: &'static str,
    minutes: &'static str,
}

const EN: Texts = Texts {
    sms: "{code} is your {app} code to {action}. It expires in {duration}. Never share this code.",
    sms_short: "{code} is your {app} code. It expires in {minutes} min. Never share this code.",
    subject: "Your {app} verification code",
    intro: "Here is your {app} code to {action}:",
    expiry: "It expires in {duration}. Never share this code with anyone.",
    ignore: "If you did not ask for this code, you can ignore this email.",
    voice: "Hello, this is {app}. Here is your code to {action}: {code}. Again, your code is: {code}. \
            It expires in {duration}. Never share this code.",
    actions: [
        "sign in from a new device",
        "confirm a change to your account",
        "confirm it's you",
        "reset your password",
        "verify it's you",
    ],
    minute: "minute",
    minutes: "minutes",
};

const ES: Texts = Texts {
    sms: "{code} es tu código de {app} para {action}. Caduca en {duration}. \
          No compartas este código con nadie.",
    sms_short: "{app}: código {code}. Caduca en {minutes} min. No lo compartas.",
    subject: "Tu código de verificación de {app}",
    intro: "Este es tu código de {app} para {action}:",
    expiry: "Caduca en {duration}. No compartas este código con nadie.",
    ignore: "Si no solicitaste este código, puedes ignorar este correo.",
    voice: "Hola, te llamamos de {app}. Este es tu código para {action}: {code}. Repito: {code}. \
            Caduca en {duration}. No compartas este código con nadie.",
    actions: [
        "iniciar sesión en un dispositivo nuevo",
        "confirmar un cambio en tu cuenta",
        "confirmar que eres tú",
        "restablecer tu contraseña",
        "verificar que eres tú",
    ],
    minute: "minuto",
    minutes: "minutos",
};

const DE: Texts = Texts {
    sms: "{app}: Ihr Code {action} lautet {code}. Er ist {duration} gültig. \
          Geben Sie diesen Code niemals weiter.",
    sms_short: "{app}: Ihr Code lautet {code}. Gültig für {minutes} Min. Geben Sie ihn niemals weiter.",
    subject: "Ihr Bestätigungscode für {app}",
    intro: "Ihr Code {action} bei {app} lautet:",
    expiry: "Er ist {duration} gültig. Geben Sie diesen Code niemals weiter.",
    ignore: "Wenn Sie diesen Code nicht angefordert haben, können Sie diese E-Mail ignorieren.",
    voice: "Hallo, hier ist {app}. Ihr Code {action} lautet: {code}. Ich wiederhole: {code}. \
            Er ist {duration} gültig. Geben Sie diesen Code niemals weiter.",
    actions: [
        "zur Anmeldung auf einem neuen Gerät",
        "zur Bestätigung einer Kontoänderung",
        "zur Bestätigung Ihrer Identität",
        "zum Zurücksetzen Ihres Passworts",
        "zur Überprüfung Ihrer Identität",
    ],
    minute: "Minute",
    minutes: "Minuten",
};

const FR: Texts = Texts {
    sms: "{code} est votre code {app} pour {action}. Il expire dans {duration}. \
          Ne partagez jamais ce code.",
    sms_short: "Code {app} : {code}. Expire dans {minutes} min. Ne le partagez avec personne.",
    subject: "Votre code de vérification {app}",
    intro: "Voici votre code {app} pour {action} :",
    expiry: "Il expire dans {duration}. Ne partagez ce code avec personne.",
    ignore: "Si vous n'avez pas demandé ce code, vous pouvez ignorer cet e-mail.",
    voice: "Bonjour, ici {app}. Voici votre code pour {action} : {code}. Je répète : {code}. \
            Il expire dans {duration}. Ne partagez ce code avec personne.",
    actions: [
        "vous connecter depuis un nouvel appareil",
        "confirmer une modification de votre compte",
        "confirmer votre identité",
        "réinitialiser votre mot de passe",
        "vérifier votre identité",
    ],
    minute: "minute",
    minutes: "minutes",
};

const PT: Texts = Texts {
    sms: "{code} é seu código {app} para {action}. Expira em {duration}. \
          Nunca compartilhe este código.",
    sms_short: "{app}: código {code}. Expira em {minutes} min. Nunca compartilhe.",
    subject: "{app}: seu código de verificação",
    intro: "Este é seu código {app} para {action}:",
    expiry: "Ele expira em {duration}. Nunca compartilhe este código com ninguém.",
    ignore: "Se você não pediu este código, pode ignorar este e-mail.",
    voice: "Olá, aqui é {app}. Este é seu código para {action}: {code}. Repetindo: {code}. \
            Ele expira em {duration}. Nunca compartilhe este código com ninguém.",
    actions: [
        "entrar em um novo dispositivo",
        "confirmar uma alteração na sua conta",
        "confirmar que é você",
        "redefinir sua senha",
        "verificar que é você",
    ],
    minute: "minuto",
    minutes: "minutos",
};

fn texts(locale: Locale) -> &'static Texts {
    [&EN, &ES, &DE, &FR, &PT][locale.index()]
}

/// The built-in template text of `kind` in `locale`.
pub(crate) fn template(locale: Locale, kind: TemplateKind) -> String {
    let t = texts(locale);
    match kind {
        TemplateKind::Sms => t.sms.to_owned(),
        TemplateKind::SmsShort => t.sms_short.to_owned(),
        TemplateKind::EmailSubject => t.subject.to_owned(),
        TemplateKind::EmailText => [t.intro, "{code}", t.expiry, t.ignore].join("\n\n"),
        TemplateKind::EmailHtml => [
            "<!DOCTYPE html>\n<html lang=\"",
            locale.as_str(),
            "\">\n<head><meta charset=\"utf-8\"><title>",
            t.subject,
            "</title></head>\n<body>\n<p>",
            t.intro,
            "</p>\n<p style=\"font-size:24px;font-weight:bold;letter-spacing:4px\">{code}</p>\n<p>",
            t.expiry,
            "</p>\n<p>",
            t.ignore,
            "</p>\n</body>\n</html>\n",
        ]
        .concat(),
        TemplateKind::Voice => t.voice.to_owned(),
    }
}

/// The built-in phrase for `purpose`; custom purposes get the generic one
/// ("verify it's you").
pub(crate) fn action(locale: Locale, purpose: &Purpose) -> &'static str {
    let i = match purpose {
        Purpose::LoginNewDevice => 0,
        Purpose::CredentialChange => 1,
        Purpose::StepUp => 2,
        Purpose::PasswordReset => 3,
        Purpose::Custom(_) => 4,
    };
    texts(locale).actions[i]
}

/// The lifetime in words: "1 minute", "10 minutes".
/// The lifetime in words ("10 minutes"), written into `out`.
pub(crate) fn duration(locale: Locale, minutes: i64, out: &mut ShortText) {
    let t = texts(locale);
    let word = if minutes == 1 { t.minute } else { t.minutes };
    out.push_number(minutes);
    out.push_str(" ");
    out.push_str(word);
}

/// A short text built on the stack (a number, a word): the values a message
/// needs besides the code, without an allocation per message. What does not
/// fit in 64 bytes is cut at a character boundary (no built-in word is near
/// that long).
pub(crate) struct ShortText {
    buf: [u8; 64],
    len: usize,
}

impl ShortText {
    pub(crate) fn new() -> Self {
        ShortText {
            buf: [0; 64],
            len: 0,
        }
    }

    pub(crate) fn push_str(&mut self, s: &str) {
        let room = self.buf.len() - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
    }

    /// Writes `n` in decimal (a minus sign first if negative).
    pub(crate) fn push_number(&mut self, n: i64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut v = n.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if n < 0 {
            self.push_str("-");
        }
        // ASCII digits: always a valid string.
        self.push_str(std::str::from_utf8(&digits[at..]).unwrap_or("0"));
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole strings (cut at character boundaries) are pushed.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_writes_numbers_and_cuts_at_character_boundaries() {
        for n in [0i64, 1, 9, 10, 1440, -5, i64::MAX, i64::MIN] {
            let mut t = ShortText::new();
            t.push_number(n);
            assert_eq!(t.as_str(), n.to_string());
        }
        let mut t = ShortText::new();
        t.push_str(&"a".repeat(63));
        t.push_str("é"); // two bytes, one left: cut before it
        assert_eq!(t.as_str(), "a".repeat(63));
        t.push_str("b");
        assert_eq!(t.as_str(), format!("{}b", "a".repeat(63)));
        t.push_str("c");
        assert_eq!(t.as_str().len(), 64);
    }

    #[test]
    fn every_locale_words_its_durations() {
        for locale in [Locale::En, Locale::Es, Locale::De, Locale::Fr, Locale::Pt] {
            for minutes in [1i64, 10] {
                let mut t = ShortText::new();
                duration(locale, minutes, &mut t);
                let w = texts(locale);
                let word = if minutes == 1 { w.minute } else { w.minutes };
                assert_eq!(t.as_str(), format!("{minutes} {word}"));
            }
        }
    }
}
