use crate::ServiceError;

/// An FRS face-detect attribute code (§2.1), v2 codes plus the legacy v1 landmark code `3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    Gender = 1,
    Age = 2,
    /// Legacy v1 code: frs answers it with the five detector landmarks.
    Landmark = 3,
    Dress = 4,
    Mask = 6,
    Hair = 7,
    Beard = 8,
    PhotoType = 11,
    Quality = 12,
    Expression = 13,
    FaceAngle = 21,
}

impl Attribute {
    const ALL: [Attribute; 11] = [
        Attribute::Gender,
        Attribute::Age,
        Attribute::Landmark,
        Attribute::Dress,
        Attribute::Mask,
        Attribute::Hair,
        Attribute::Beard,
        Attribute::PhotoType,
        Attribute::Quality,
        Attribute::Expression,
        Attribute::FaceAngle,
    ];

    fn from_code(code: &str) -> Option<Self> {
        let code: u8 = code.trim().parse().ok()?;
        Self::ALL.into_iter().find(|a| *a as u8 == code)
    }
}

/// The validated `attributes` parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeSet(Vec<Attribute>);

impl AttributeSet {
    /// Parses a comma-separated list of codes; absent or empty means none.
    /// Unknown codes and malformed lists are `FRS.0012`.
    pub fn parse(raw: Option<&str>) -> Result<Self, ServiceError> {
        let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
            return Ok(Self::default());
        };
        let mut set = Vec::new();
        for code in raw.split(',') {
            let attribute = Attribute::from_code(code).ok_or_else(|| {
                ServiceError::InvalidParameter(format!("attributes contains unknown code '{}'", code.trim()))
            })?;
            if !set.contains(&attribute) {
                set.push(attribute);
            }
        }
        Ok(Self(set))
    }

    /// Whether `attribute` was requested.
    pub fn contains(&self, attribute: Attribute) -> bool {
        self.0.contains(&attribute)
    }

    /// Whether any code other than the legacy landmark code was requested.
    pub fn requested_any(&self) -> bool {
        self.0.iter().any(|a| *a != Attribute::Landmark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_and_rejects_unknown_ones() {
        let set = AttributeSet::parse(Some("2, 12,3,2")).expect("valid list");
        assert!(set.contains(Attribute::Age) && set.contains(Attribute::Quality));
        assert!(set.contains(Attribute::Landmark) && !set.contains(Attribute::Gender));
        assert_eq!(AttributeSet::parse(Some("")).expect("empty"), AttributeSet::default());
        assert_eq!(AttributeSet::parse(None).expect("absent"), AttributeSet::default());
        for bad in ["5", "2,,3", "abc", "2;3", "99"] {
            assert!(matches!(AttributeSet::parse(Some(bad)), Err(ServiceError::InvalidParameter(_))), "{bad}");
        }
    }
}
