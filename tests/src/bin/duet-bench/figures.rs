//! The figures of one benchmark run: each printed as `bench: NAME VALUE UNIT` the moment
//! it is known, kept for the ratios and the report at the end.

/// One measured figure.
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

/// Every figure of the run, in the order measured.
#[derive(Default)]
pub struct Figures(Vec<Figure>);

impl Figures {
    /// Records a figure and prints its `bench:` line.
    pub fn add(&mut self, name: &str, value: f64, unit: &str) {
        println!("bench: {name} {} {unit}", show(value));
        self.0.retain(|f| f.name != name);
        self.0.push(Figure {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
        });
    }

    /// Takes in the `bench: NAME VALUE UNIT` lines another benchmark program printed,
    /// each name prefixed with `prefix`.
    pub fn absorb(&mut self, prefix: &str, output: &str) -> usize {
        let mut taken = 0;
        for line in output.lines() {
            let Some(rest) = line.strip_prefix("bench: ") else {
                continue;
            };
            let mut parts = rest.splitn(3, ' ');
            let (Some(name), Some(value), unit) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if let Ok(value) = value.parse::<f64>() {
                self.add(&format!("{prefix}{name}"), value, unit.unwrap_or(""));
                taken += 1;
            }
        }
        taken
    }

    /// The value of a figure, if it was measured.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|f| f.name == name).map(|f| f.value)
    }

    /// Every figure, in the order measured.
    pub fn all(&self) -> &[Figure] {
        &self.0
    }
}

/// A value as printed: whole numbers without decimals, others with enough to read.
pub fn show(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorb_takes_bench_lines_and_skips_the_rest() {
        let mut f = Figures::default();
        let n = f.absorb(
            "peer_",
            "summary: x\nbench: push_seconds 0.170 s\nbench: broken\nbench: x notanumber y\n",
        );
        assert_eq!(n, 1);
        assert_eq!(f.get("peer_push_seconds"), Some(0.17));
        assert_eq!(f.all()[0].unit, "s");
    }
}
