//! The Prometheus text format (0.0.4), as the kit's exporter writes it at
//! `/metrics`, read into the few numbers the System page shows; and
//! Prometheus' `histogram_quantile`.
//!
//! A small reader of our own rather than a crate: prometheus-parse (0.2.5,
//! the one crates.io has) reads a sample's labels up to the first `}` and
//! splits them at every `,` and `=`, without escapes, and the kit's `route`
//! label holds axum's route templates such as `/client/{id}`, which it cuts
//! in two. The format's sample lines are simple enough to read exactly:
//! `name{label="value",…} value [timestamp]`, values escaped with `\\`,
//! `\"` and `\n`.

/// One sample line: its metric's name, its labels in order, its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The sample lines of `text`; comments, blank lines and lines that are no
/// sample are left out.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(sample)
        .collect()
}

fn sample(line: &str) -> Option<Sample> {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let (name, mut rest) = line.split_at(end);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (read, after) = label_set(inner)?;
        labels = read;
        rest = after;
    }
    // The value, then an optional timestamp (ignored).
    let value = number(rest.split_whitespace().next()?)?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `a="x",b="y"}` → the labels and what follows the `}`.
fn label_set(mut rest: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after) = rest.split_once('=')?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let mut chars = after.trim_start().strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let close = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()? {
                    (_, 'n') => value.push('\n'),
                    (_, other) => value.push(other),
                },
                (at, '"') => break at,
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_owned(), value));
        let quoted = after.trim_start().strip_prefix('"')?;
        rest = quoted[close + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return None;
        }
    }
}

/// A sample's value: a float, or `+Inf`, `-Inf`, `NaN` as Go writes them.
fn number(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// The `q` quantile (0 to 1) of a histogram's cumulative buckets (upper
/// bound, count), as Prometheus' `histogram_quantile` computes it: the
/// bucket that holds the rank `q × total`, linearly interpolated between
/// its bounds (the first bucket's lower bound is 0); in the `+Inf` bucket,
/// the largest finite bound. `None` without observations, or without a
/// `+Inf` bucket.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let mut buckets = buckets.to_vec();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let &(last_bound, total) = buckets.last()?;
    if last_bound != f64::INFINITY || buckets.len() < 2 || total <= 0.0 || !(0.0..=1.0).contains(&q)
    {
        return None;
    }
    // Counts that go down (a series reset between two readings) are
    // raised to the one below, as Prometheus does.
    let mut highest = 0.0_f64;
    for bucket in &mut buckets {
        highest = highest.max(bucket.1);
        bucket.1 = highest;
    }
    let rank = q * total;
    let index = buckets.iter().position(|&(_, count)| count >= rank)?;
    if index == buckets.len() - 1 {
        return Some(buckets[index - 1].0);
    }
    let (end, count) = buckets[index];
    if index == 0 && end <= 0.0 {
        return Some(end);
    }
    let (start, below) = if index == 0 {
        (0.0, 0.0)
    } else {
        buckets[index - 1]
    };
    let in_bucket = count - below;
    if in_bucket <= 0.0 {
        return Some(end);
    }
    Some(start + (end - start) * ((rank - below) / in_bucket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kits_lines() {
        let text = "# HELP http_requests_total Requests answered.\n\
                    # TYPE http_requests_total counter\n\
                    http_requests_total{method=\"GET\",route=\"/client/{id}\",status=\"200\"} 42\n\
                    \n\
                    http_request_duration_seconds_bucket{method=\"GET\",route=\"/client/{id}\",status=\"200\",le=\"+Inf\"} 42\n\
                    upstream_peer_circuit_breaker_state{target=\"client_service\",peer=\"http://127.0.0.1:8000\"} 1\n\
                    db_pool_max_connections 8 1700000000000\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 4, "{samples:?}");
        assert_eq!(samples[0].name, "http_requests_total");
        assert_eq!(samples[0].label("route"), Some("/client/{id}"));
        assert_eq!(samples[0].label("status"), Some("200"));
        assert_eq!(samples[0].value, 42.0);
        assert_eq!(samples[1].label("le"), Some("+Inf"));
        assert_eq!(samples[2].label("peer"), Some("http://127.0.0.1:8000"));
        assert_eq!(samples[3].labels, vec![]);
        assert_eq!(samples[3].value, 8.0);
    }

    #[test]
    fn reads_escapes_commas_and_braces_in_values() {
        let samples = parse(r#"m{a="x,y=\"z\"}",b="back\\slash\nnew", } +Inf"#);
        assert_eq!(samples.len(), 1, "{samples:?}");
        assert_eq!(samples[0].label("a"), Some("x,y=\"z\"}"));
        assert_eq!(samples[0].label("b"), Some("back\\slash\nnew"));
        assert_eq!(samples[0].value, f64::INFINITY);
    }

    #[test]
    fn leaves_out_what_is_no_sample() {
        let text = "m{a=\"unclosed} 1\nm{a=x} 1\n{a=\"b\"} 1\nm\nm{a=\"b\"} one\n9m 1\nok 1";
        let samples = parse(text);
        assert_eq!(samples.len(), 1, "{samples:?}");
        assert_eq!(samples[0].name, "ok");
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        // 100 observations: 50 ≤ 10 ms, 40 in (10, 50] ms, 10 in (50, 100] ms.
        let buckets = [
            (0.01, 50.0),
            (0.05, 90.0),
            (0.1, 100.0),
            (f64::INFINITY, 100.0),
        ];
        let p50 = histogram_quantile(0.5, &buckets).unwrap();
        assert!((p50 - 0.01).abs() < 1e-12, "{p50}");
        // Rank 99: 9 of the 10 in (50, 100] ms → 50 + 50 × 0.9 = 95 ms.
        let p99 = histogram_quantile(0.99, &buckets).unwrap();
        assert!((p99 - 0.095).abs() < 1e-12, "{p99}");
        // Rank 25 in the first bucket: from 0 → 5 ms.
        let p25 = histogram_quantile(0.25, &buckets).unwrap();
        assert!((p25 - 0.005).abs() < 1e-12, "{p25}");
    }

    #[test]
    fn a_quantile_in_the_infinite_bucket_is_the_largest_finite_bound() {
        let buckets = [(0.1, 90.0), (1.0, 95.0), (f64::INFINITY, 100.0)];
        assert_eq!(histogram_quantile(0.99, &buckets), Some(1.0));
    }

    #[test]
    fn no_quantile_without_observations_or_infinite_bucket() {
        assert_eq!(
            histogram_quantile(0.99, &[(0.1, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(histogram_quantile(0.99, &[(0.1, 5.0), (1.0, 5.0)]), None);
        assert_eq!(histogram_quantile(0.99, &[]), None);
    }
}
