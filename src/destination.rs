//! Where a code goes: [`Destination`] (a phone number, an email address or an
//! application-defined address), its [`Channel`], and the
//! [`MaskedDestination`] that is safe to show on screens and in logs.

use std::fmt;
use std::sync::Arc;

use crate::error::InputError;

/// The longest address, in bytes (an email address is at most 254).
pub const MAX_ADDRESS_LEN: usize = 254;

/// How a code travels.
///
/// ```
/// use vericode::Channel;
/// assert_eq!(Channel::Sms.as_str(), "sms");
/// assert_eq!(Channel::custom("whatsapp")?.as_str(), "whatsapp");
/// # Ok::<(), vericode::InputError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Channel {
    /// A text message to a phone number.
    Sms,
    /// A voice call to a phone number.
    Voice,
    /// An email.
    Email,
    /// An application-defined channel (a chat app, a push notification…).
    Custom(Arc<str>),
}

impl Channel {
    /// An application-defined channel: 1 to 32 characters of `a-z`, `0-9`, `_`,
    /// not `sms`, `voice` or `email`.
    pub fn custom(name: &str) -> Result<Channel, InputError> {
        let ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !matches!(name, "sms" | "voice" | "email");
        if !ok {
            return Err(InputError::Channel);
        }
        Ok(Channel::Custom(Arc::from(name)))
    }

    /// The channel's stable name.
    pub fn as_str(&self) -> &str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
            Channel::Email => "email",
            Channel::Custom(n) => n,
        }
    }

    pub(crate) fn parse(name: &str) -> Result<Channel, InputError> {
        match name {
            "sms" => Ok(Channel::Sms),
            "voice" => Ok(Channel::Voice),
            "email" => Ok(Channel::Email),
            other => Channel::custom(other),
        }
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Channel({})", self.as_str())
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a code is sent: a validated address on a channel.
///
/// ```
/// use vericode::{Channel, Destination};
/// let phone = Destination::sms("+14155550123")?;
/// assert_eq!(phone.channel(), &Channel::Sms);
/// assert_eq!(phone.masked().as_str(), "•••• ••• 0123");
/// let mail = Destination::email("Ana@Example.COM")?;
/// assert_eq!(mail.address(), "Ana@example.com");
/// assert_eq!(mail.masked().as_str(), "A•••@example.com");
/// assert!(Destination::sms("555-0123").is_err());
/// # Ok::<(), vericode::InputError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    channel: Channel,
    address: Arc<str>,
}

impl Destination {
    /// A text message to an E.164 phone number (`+` and 8 to 15 digits, the
    /// first not 0). Spaces, dots, dashes and parentheses are dropped first,
    /// and a trunk prefix written `(0)` after the calling code, which is not
    /// part of the number. A trunk 0 written without parentheses
    /// (`+44 07700…`) is kept: some countries' numbers do start with 0
    /// (Italy's landlines, Côte d'Ivoire's), so only the application, knowing
    /// its users, can drop it.
    ///
    /// ```
    /// use vericode::Destination;
    /// assert_eq!(
    ///     Destination::sms("+44 (0)7700 900123")?,
    ///     Destination::sms("+447700900123")?
    /// );
    /// # Ok::<(), vericode::InputError>(())
    /// ```
    pub fn sms(phone: &str) -> Result<Destination, InputError> {
        Ok(Destination {
            channel: Channel::Sms,
            address: parse_e164(phone)?.into(),
        })
    }

    /// A voice call to an E.164 phone number (see [`Destination::sms`]).
    pub fn voice(phone: &str) -> Result<Destination, InputError> {
        Ok(Destination {
            channel: Channel::Voice,
            address: parse_e164(phone)?.into(),
        })
    }

    /// An email to `address` (the domain is lower-cased; the local part kept as
    /// typed). A pragmatic check, not the full RFC 5322 grammar: one `@`, a
    /// local part of 1 to 64 printable ASCII characters without quotes or
    /// brackets, a domain of dot-separated labels of letters, digits and `-`.
    pub fn email(address: &str) -> Result<Destination, InputError> {
        Ok(Destination {
            channel: Channel::Email,
            address: parse_email(address)?.into(),
        })
    }

    /// An address on an application-defined channel: 1 to 254 bytes without
    /// control characters; its format is the application's business.
    pub fn custom(channel: Channel, address: &str) -> Result<Destination, InputError> {
        if matches!(channel, Channel::Sms | Channel::Voice) {
            return Self::with_channel(channel, address);
        }
        if channel == Channel::Email {
            return Self::email(address);
        }
        if address.is_empty()
            || address.len() > MAX_ADDRESS_LEN
            || address.chars().any(char::is_control)
        {
            return Err(InputError::Address);
        }
        Ok(Destination {
            channel,
            address: address.into(),
        })
    }

    fn with_channel(channel: Channel, address: &str) -> Result<Destination, InputError> {
        match channel {
            Channel::Sms => Self::sms(address),
            Channel::Voice => Self::voice(address),
            Channel::Email => Self::email(address),
            other => Self::custom(other, address),
        }
    }

    /// Rebuilds a destination from its stored parts, validating again; only
    /// the canonical (already normalised) form is accepted, so one record has
    /// one byte form.
    pub(crate) fn from_parts(channel: &str, address: &str) -> Result<Destination, InputError> {
        let channel = Channel::parse(channel)?;
        if matches!(channel, Channel::Sms | Channel::Voice) {
            // The canonical form of a phone number is exactly what
            // `parse_e164` returns, and parses to itself: checked directly,
            // without a second parse and copy (every read of a challenge in
            // the compact layout, and on Redis, comes here).
            if !is_canonical_e164(address) {
                return Err(InputError::Phone);
            }
            return Ok(Destination {
                channel,
                address: address.into(),
            });
        }
        let d = Self::with_channel(channel, address)?;
        if &*d.address != address {
            return Err(InputError::Address);
        }
        Ok(d)
    }

    /// The channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The normalised address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The country calling code of a phone destination ("1", "44", "351"; "1"
    /// and the area code for a country that shares +1 with the United States
    /// and Canada, "1876" for Jamaica: see
    /// [`NANP_COUNTRIES`](crate::NANP_COUNTRIES)).
    ///
    /// ```
    /// use vericode::Destination;
    /// assert_eq!(Destination::sms("+447700900123")?.calling_code(), Some("44"));
    /// assert_eq!(Destination::email("a@example.com")?.calling_code(), None);
    /// # Ok::<(), vericode::InputError>(())
    /// ```
    pub fn calling_code(&self) -> Option<&str> {
        match self.channel {
            Channel::Sms | Channel::Voice => Some(crate::limits::calling_code(&self.address)),
            _ => None,
        }
    }

    /// What the per-destination send limit counts by, as a kind and a value:
    /// one phone number whatever the channel (texts and calls to it cost
    /// alike), one mailbox whatever the case of its local part and any
    /// `+tag` (`Ana+x@example.com` reaches `ana@example.com` at the common
    /// providers). Merging two mailboxes that differ only so makes the limit
    /// stricter, never looser. (Provider-specific forms, such as the dots
    /// Gmail ignores, are not merged.) The kinds are built-in channel names,
    /// which no custom channel may take.
    pub(crate) fn limit_value(&self) -> (&str, std::borrow::Cow<'_, str>) {
        use std::borrow::Cow;
        match &self.channel {
            Channel::Sms | Channel::Voice => ("sms", Cow::Borrowed(&self.address)),
            Channel::Email => {
                let (local, domain) = self.address.split_once('@').unwrap_or(("", &self.address));
                let mailbox = local.split_once('+').map_or(local, |(m, _)| m);
                (
                    "email",
                    Cow::Owned(format!("{}@{domain}", mailbox.to_ascii_lowercase())),
                )
            }
            Channel::Custom(_) => (self.channel.as_str(), Cow::Borrowed(&self.address)),
        }
    }

    /// The prefix the prefix limit counts by, in two parts to
    /// be hashed one after the other (`tel:+` and the calling code of a phone
    /// number, `mail:` and the domain of an email address; none for custom
    /// channels): the bytes of `tel:+44`, without a string made for them.
    pub(crate) fn prefix(&self) -> Option<[&str; 2]> {
        match self.channel {
            Channel::Sms | Channel::Voice => {
                Some(["tel:+", crate::limits::calling_code(&self.address)])
            }
            Channel::Email => self.address.split_once('@').map(|(_, d)| ["mail:", d]),
            Channel::Custom(_) => None,
        }
    }

    /// The number range the conversion guard counts by (see
    /// [`ConversionGuard`](crate::ConversionGuard)): the country and the next
    /// three digits of a phone number; none for email and custom channels,
    /// which are not pumped.
    pub(crate) fn number_range(&self) -> Option<[&str; 2]> {
        match self.channel {
            Channel::Sms | Channel::Voice => Some(crate::limits::number_range(&self.address)),
            Channel::Email | Channel::Custom(_) => None,
        }
    }

    /// The address masked for screens and logs.
    pub fn masked(&self) -> MaskedDestination {
        MaskedDestination(match self.channel {
            Channel::Sms | Channel::Voice => {
                // The last four digits (numbers are validated E.164: ASCII).
                let digits = self.address.get(self.address.len().saturating_sub(4)..);
                let mut out = String::with_capacity(32);
                out.push_str("•••• ••• ");
                out.push_str(digits.unwrap_or(""));
                out
            }
            Channel::Email => {
                let (local, domain) = self.address.split_once('@').unwrap_or(("", &self.address));
                let mut out = String::with_capacity(domain.len() + 14);
                out.extend(local.chars().next());
                out.push_str("•••@");
                out.push_str(domain);
                out
            }
            Channel::Custom(_) => {
                let n = self.address.chars().count();
                let tail: String = self.address.chars().skip(n.saturating_sub(2)).collect();
                if n > 6 {
                    format!("•••{tail}")
                } else {
                    "•••".to_owned()
                }
            }
        })
    }
}

impl fmt::Debug for Destination {
    /// Prints the masked form: addresses are personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Destination({}: {})",
            self.channel,
            self.masked().as_str()
        )
    }
}

/// A destination masked for display: enough for the person to recognise
/// ("•••• ••• 4321", "j•••@example.com"), nothing more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskedDestination(String);

impl MaskedDestination {
    /// The masked text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MaskedDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `+`, then 8 to 15 ASCII digits, the first not 0: what [`parse_e164`]
/// returns, and the only inputs it returns unchanged.
fn is_canonical_e164(s: &str) -> bool {
    match s.as_bytes() {
        [b'+', first, rest @ ..] => {
            (7..=14).contains(&rest.len())
                && (b'1'..=b'9').contains(first)
                && rest.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

fn parse_e164(input: &str) -> Result<String, InputError> {
    if input.len() > 32 {
        return Err(InputError::Phone);
    }
    let mut out = String::with_capacity(16);
    let bytes = input.trim().as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        // "+44 (0)20…": a trunk prefix, dialled only inside the country and
        // never part of the international number, right after the whole
        // country calling code. Kept, it would name the same phone a second
        // way (and a second destination to the limits).
        if bytes[i..].starts_with(b"(0)")
            && let Some(read) = out.get(1..)
            && !read.is_empty()
            && read.len() == crate::limits::country_code_len(read)
        {
            i += 3;
            continue;
        }
        match b {
            b'+' if i == 0 => out.push('+'),
            b'0'..=b'9' => out.push(char::from(b)),
            b' ' | b'.' | b'-' | b'(' | b')' => {}
            _ => return Err(InputError::Phone),
        }
        i += 1;
    }
    if !is_canonical_e164(&out) {
        return Err(InputError::Phone);
    }
    Ok(out)
}

fn parse_email(input: &str) -> Result<String, InputError> {
    let input = input.trim();
    if input.len() > MAX_ADDRESS_LEN {
        return Err(InputError::Email);
    }
    let (local, domain) = input.split_once('@').ok_or(InputError::Email)?;
    let local_ok = (1..=64).contains(&local.len())
        && local.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'@' | b'"'
                        | b'('
                        | b')'
                        | b'<'
                        | b'>'
                        | b'['
                        | b']'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                )
        })
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !(local_ok && domain_ok) {
        return Err(InputError::Email);
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prefix's parts, hashed one after the other, are the bytes the
    /// prefix's store keys were always named by (`tel:+44`, `mail:example.org`).
    #[test]
    fn prefixes_spell_the_bytes_their_keys_are_named_by() {
        let joined = |d: Destination| d.prefix().map(|[head, tail]| format!("{head}{tail}"));
        for (d, want) in [
            (Destination::sms("+447700900123"), Some("tel:+44")),
            (Destination::voice("+14155550123"), Some("tel:+1")),
            (Destination::sms("+18765550123"), Some("tel:+1876")),
            (
                Destination::email("ana@Mail.Example.org"),
                Some("mail:mail.example.org"),
            ),
            (
                Destination::custom(Channel::custom("push").unwrap(), "device-1"),
                None,
            ),
        ] {
            assert_eq!(joined(d.unwrap()).as_deref(), want);
        }
    }

    #[test]
    fn phones() {
        assert_eq!(
            Destination::sms("+1 (415) 555-0123").unwrap().address(),
            "+14155550123"
        );
        // A trunk prefix in parentheses is not part of the number; a 0 in
        // parentheses with other digits is still digits.
        for (typed, e164) in [
            ("+44 (0)7700 900123", "+447700900123"),
            ("+49 (0)30 1234567", "+49301234567"),
            ("+44 (07700) 900123", "+4407700900123"),
            ("+1 (0)4155550123", "+14155550123"),
            // Past the calling code, "(0)" is digits.
            ("+44 7700 (0)90012", "+447700090012"),
            ("+44 7(0)700 900123", "+4470700900123"),
            ("+1 41(0)5 555 0123", "+141055550123"),
            // Inside the calling code, and after a NANP area code, too.
            ("+4(0)4 7700 900123", "+4047700900123"),
            ("+35(0)1 912345678", "+3501912345678"),
            ("+1 876 (0)5550123", "+187605550123"),
        ] {
            assert_eq!(Destination::sms(typed).unwrap().address(), e164);
        }
        for bad in [
            "",
            "+",
            "(0)+4412345678",
            "14155550123",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+1 415 abc",
            "++14155550123",
            "+١٤١٥٥٥٥٠١٢٣",
        ] {
            assert_eq!(Destination::sms(bad), Err(InputError::Phone), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Destination::email(" a.b+c@Mail.Example.org ")
                .unwrap()
                .address(),
            "a.b+c@mail.example.org"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@-x.com",
            "a@x..com",
            ".a@x.com",
            "é@x.com",
            "a@x.c_m",
        ] {
            assert_eq!(Destination::email(bad), Err(InputError::Email), "{bad:?}");
        }
    }

    #[test]
    fn masks_show_little() {
        let d = Destination::custom(Channel::custom("chat").unwrap(), "user:12345678").unwrap();
        assert_eq!(d.masked().as_str(), "•••78");
        let d = Destination::custom(Channel::custom("chat").unwrap(), "abc").unwrap();
        assert_eq!(d.masked().as_str(), "•••");
        assert!(!format!("{:?}", Destination::sms("+14155550123").unwrap()).contains("415"));
    }

    #[test]
    fn custom_channels_with_builtin_names_are_validated_as_such() {
        assert!(Destination::custom(Channel::Sms, "nope").is_err());
        assert!(Channel::custom("sms").is_err());
        assert_eq!(
            Destination::from_parts("email", "x@y.io")
                .unwrap()
                .channel(),
            &Channel::Email
        );
    }

    proptest::proptest! {
        /// A stored phone number is accepted exactly when parsing it again
        /// gives it back unchanged: the direct check and the parser agree.
        #[test]
        fn stored_phones_are_read_back_as_the_parser_would(
            address in "[+0-9 ()]{0,3}[0-9]{0,17}|\\+[0-9]{6,17}|[+0-9(). -]{0,20}",
            voice in proptest::bool::ANY,
        ) {
            let channel = if voice { "voice" } else { "sms" };
            let parsed = Destination::custom(Channel::parse(channel).unwrap(), &address)
                .ok()
                .filter(|d| d.address() == address);
            let read = Destination::from_parts(channel, &address).ok();
            proptest::prop_assert_eq!(read, parsed);
        }
    }
}
