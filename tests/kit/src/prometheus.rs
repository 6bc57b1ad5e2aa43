//! The Prometheus text exposition a service's `/metrics` answers, read
//! into samples.

use std::collections::BTreeMap;

/// One sample of a Prometheus text exposition: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of a Prometheus text exposition (comments left out).
/// Panics on a line it cannot read: the format is the service's promise.
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| parse_sample(line).unwrap_or_else(|| panic!("not a metric sample: {line}")))
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            inner = inner.trim_start_matches(',');
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            // key="value", with \\, \" and \n escaped inside the value.
            let (key, after_key) = inner.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after_key.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.insert(key.to_owned(), value);
            inner = &after_key[end + 1..];
        }
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The value of the sample `name` whose labels are exactly `labels`.
pub fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == wanted)
        .map(|s| s.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_with_their_labels_escapes_and_infinities() {
        let samples = parse_metrics(
            "# HELP x_total A counter.\n\
             # TYPE x_total counter\n\
             x_total{route=\"/client/{id}\",status=\"200\"} 3\n\
             y_bucket{le=\"+Inf\",note=\"a \\\"quoted\\\" \\\\ line\\n\"} 5\n\
             z +Inf\n",
        );
        assert_eq!(samples.len(), 3);
        assert_eq!(
            metric(
                &samples,
                "x_total",
                &[("route", "/client/{id}"), ("status", "200")]
            ),
            Some(3.0)
        );
        assert_eq!(
            metric(
                &samples,
                "y_bucket",
                &[("le", "+Inf"), ("note", "a \"quoted\" \\ line\n")]
            ),
            Some(5.0)
        );
        assert_eq!(metric(&samples, "z", &[]), Some(f64::INFINITY));
        assert_eq!(metric(&samples, "x_total", &[]), None, "labels must match");
    }

    #[test]
    #[should_panic(expected = "not a metric sample")]
    fn a_line_that_is_no_sample_fails() {
        parse_metrics("x_total{route=\"/\" 3\n");
    }
}
