//! One reading of the request target: the rules by which a request whose
//! path could be read two ways is refused with a 400 before any routing.
//!
//! The gateway routes on the path it has decoded and normalised, and passes
//! on the path as it was sent; a service decodes it again, segment by
//! segment. Wherever those readings can differ (an encoded slash, a dot
//! segment, an encoded letter), the gateway and the service would disagree
//! on which resource was asked for. The gateway refuses such targets (the
//! map `$gateway_target_fault` in gateway/templates/gateway.conf.template);
//! a service applies the same rules here, so that it refuses them too when
//! called directly. KEEP THE TWO IN STEP.

use std::fmt;

/// Why a request target was refused.
/// In order of gravity: the first is the one reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TargetFault {
    /// A byte that RFC 3986 does not allow in a URL: a control character, a
    /// space, a byte above 0x7F, or one of `"<>\^`{|}[]#`.
    Character(u8),
    /// A `%` not followed by two hexadecimal digits (in the path).
    BadEscape,
    /// A `.` or `..` segment, plain or percent-encoded.
    DotSegment,
    /// `%2F`: a slash inside a segment.
    EncodedSlash,
    /// `%5C`: a backslash, which some readers take for a slash.
    EncodedBackslash,
    /// `%00` to `%1F`, or `%7F`.
    EncodedControl,
    /// A letter, digit or one of `-._~` percent-encoded: it means the same
    /// as the character itself (RFC 3986, 6.2.2.2), so it has one spelling.
    EncodedUnreserved,
}

impl fmt::Display for TargetFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Character(byte) => {
                write!(
                    f,
                    "a character that must be percent-encoded (byte 0x{byte:02X})"
                )
            }
            Self::BadEscape => f.write_str("a % that does not start a percent-encoded byte"),
            Self::DotSegment => f.write_str("a dot segment (. or .., plain or percent-encoded)"),
            Self::EncodedSlash => f.write_str("an encoded slash (%2F)"),
            Self::EncodedBackslash => f.write_str("an encoded backslash (%5C)"),
            Self::EncodedControl => {
                f.write_str("an encoded control character (%00 to %1F, or %7F)")
            }
            Self::EncodedUnreserved => {
                f.write_str("a percent-encoded letter, digit or - . _ ~ (write it as itself)")
            }
        }
    }
}

/// Checks a request target: `path` and, if any, `query` (without its `?`).
/// Every byte of both must be one RFC 3986 allows in a URL; the path must
/// also have no dot segment and no escape other than of a byte that needs
/// one (and is not a slash, a backslash or a control character). With
/// several faults, the one reported is the first in [`TargetFault`]'s
/// order, as the gateway's map tries its rules in that order.
pub fn check(path: &str, query: Option<&str>) -> Result<(), TargetFault> {
    if let Some(&byte) = path
        .as_bytes()
        .iter()
        .chain(query.unwrap_or_default().as_bytes())
        .find(|&&b| !allowed(b))
    {
        return Err(TargetFault::Character(byte));
    }
    match path.split('/').filter_map(segment_fault).min() {
        Some(fault) => Err(fault),
        None => Ok(()),
    }
}

/// RFC 3986's `pchar`, `/` and `?`: unreserved, sub-delims, `:@`, and `%`.
fn allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&byte)
}

fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)
}

/// The gravest fault of one segment of the path, if any.
fn segment_fault(segment: &str) -> Option<TargetFault> {
    let bytes = segment.as_bytes();
    let mut fault: Option<TargetFault> = None;
    let mut note = |found: TargetFault| fault = Some(fault.map_or(found, |f| f.min(found)));
    // The segment's length and number of dots once decoded, for `.` and `..`.
    let (mut decoded, mut dots) = (0, 0);
    let mut i = 0;
    while i < bytes.len() {
        let byte = if bytes[i] == b'%' {
            let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            else {
                return Some(TargetFault::BadEscape);
            };
            match byte {
                b'/' => note(TargetFault::EncodedSlash),
                b'\\' => note(TargetFault::EncodedBackslash),
                0x00..=0x1F | 0x7F => note(TargetFault::EncodedControl),
                b if unreserved(b) => note(TargetFault::EncodedUnreserved),
                _ => {}
            }
            i += 3;
            byte
        } else {
            i += 1;
            bytes[i - 1]
        };
        decoded += 1;
        dots += usize::from(byte == b'.');
    }
    if (1..=2).contains(&decoded) && dots == decoded {
        note(TargetFault::DotSegment);
    }
    fault
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Result<(), TargetFault> {
        check(p, None)
    }

    #[test]
    fn plain_paths_and_needed_escapes_pass() {
        for ok in [
            "/",
            "/client/",
            "/client/12",
            "/order/?client_id=3&status=new",
            "/client/a%20b",
            "/client/%C3%A9",
            "/client/%25",
            "/client/...",
            "/client/.x",
            "/client/x.",
            "/client/a.b.json",
            "//client//",
            "/client/~me;v=1,(x)*!$'+:@",
        ] {
            let (p, q) = ok.split_once('?').map_or((ok, None), |(p, q)| (p, Some(q)));
            assert_eq!(check(p, q), Ok(()), "{ok}");
        }
    }

    #[test]
    fn each_way_to_read_a_path_twice_is_refused() {
        use TargetFault::*;
        for (bad, fault) in [
            ("/client/1%2F..%2F..%2Forder", EncodedSlash),
            ("/client/a%2fb", EncodedSlash),
            ("/client/%2E%2E/order/1", DotSegment),
            ("/client/%2e", DotSegment),
            ("/client/.%2E/x", DotSegment),
            ("/client/./1", DotSegment),
            ("/client/..", DotSegment),
            ("/../client/", DotSegment),
            ("/client/.", DotSegment),
            ("/client/a\\b", Character(b'\\')),
            ("/client/%5C", EncodedBackslash),
            ("/client/%5c..", EncodedBackslash),
            ("/client/%00", EncodedControl),
            ("/client/a%0Ab", EncodedControl),
            ("/client/%1f", EncodedControl),
            ("/client/%7F", EncodedControl),
            ("/client/\u{0}", Character(0)),
            ("/client/\t", Character(b'\t')),
            ("/client/\u{7f}", Character(0x7F)),
            ("/client/é", Character(0xC3)),
            ("/client/a b", Character(b' ')),
            ("/client/<x>", Character(b'<')),
            ("/client/#x", Character(b'#')),
            ("/client/%", BadEscape),
            ("/client/%zz", BadEscape),
            ("/client/%4", BadEscape),
            ("/%63lient/1", EncodedUnreserved),
            ("/client/%31", EncodedUnreserved),
            ("/client/a%2Eb", EncodedUnreserved),
            ("/client/%7E", EncodedUnreserved),
            ("/client/%2D", EncodedUnreserved),
            ("/client/%5F", EncodedUnreserved),
        ] {
            assert_eq!(path(bad), Err(fault), "{bad}");
        }
    }

    #[test]
    fn the_query_is_held_to_the_characters_only() {
        assert_eq!(check("/client/", Some("name=%2E%2E%2F%00")), Ok(()));
        assert_eq!(check("/client/", Some("name=a/../b")), Ok(()));
        assert_eq!(
            check("/client/", Some("name=`x`")),
            Err(TargetFault::Character(b'`'))
        );
        assert_eq!(
            check("/client/", Some("q=\u{1}")),
            Err(TargetFault::Character(1))
        );
    }
}
