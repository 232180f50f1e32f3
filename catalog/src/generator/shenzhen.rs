//! Shenzhen's real geography and population, from DOMAIN.md. Figures marked
//! (est.) are modelling estimates, not published numbers.

/// One district or function area.
#[derive(Debug, Clone, Copy)]
pub struct District {
    /// GB/T 2260 code; function areas have none and get a synthetic one (est.).
    pub code: u32,
    pub has_gb2260: bool,
    /// Full name, e.g. 福田区, 大鹏新区.
    pub name: &'static str,
    /// 2020 census residents.
    pub census_2020: u64,
    /// Land area, km² (approx.).
    pub area_km2: f64,
    /// Yearly population growth factor 2020→2024 (est.; outer districts grow faster).
    pub growth: f64,
    /// Share of residents with local 户籍 (est.).
    pub registered_share: f64,
    /// 街道 (or 镇) names without the suffix.
    pub streets: &'static [&'static str],
    /// Function areas (新区, 合作区) have no 人大, 政协, court or procuratorate of their own.
    pub function_area: bool,
    /// Towns rather than streets (深汕特别合作区).
    pub towns: bool,
}

/// Shenzhen's code and name.
pub const CITY_CODE: u32 = 440300;
pub const CITY_NAME: &str = "深圳市";

/// Year-end resident population of the city, 2020–2024 (2020: census, 17,560,061;
/// 2021–2024 from the statistical communiqués, 2024 ≈1,799万).
pub const CITY_POPULATION: [(i16, u64); 5] = [
    (2020, 17_560_061),
    (2021, 17_681_600),
    (2022, 17_661_800),
    (2023, 17_790_100),
    (2024, 17_990_000),
];

/// The 11 districts and areas in the order the statistical yearbook lists them.
pub const DISTRICTS: [District; 11] = [
    District {
        code: 440304,
        has_gb2260: true,
        name: "福田区",
        census_2020: 1_553_225,
        area_km2: 78.7,
        growth: 0.997,
        registered_share: 0.62,
        streets: &[
            "南园",
            "园岭",
            "福田",
            "沙头",
            "香蜜湖",
            "梅林",
            "莲花",
            "华富",
            "福保",
            "华强北",
        ],
        function_area: false,
        towns: false,
    },
    District {
        code: 440303,
        has_gb2260: true,
        name: "罗湖区",
        census_2020: 1_143_801,
        area_km2: 78.8,
        growth: 0.995,
        registered_share: 0.55,
        streets: &[
            "桂园",
            "黄贝",
            "东门",
            "翠竹",
            "南湖",
            "笋岗",
            "东湖",
            "莲塘",
            "东晓",
            "清水河",
        ],
        function_area: false,
        towns: false,
    },
    District {
        code: 440308,
        has_gb2260: true,
        name: "盐田区",
        census_2020: 214_225,
        area_km2: 75.0,
        growth: 0.998,
        registered_share: 0.36,
        streets: &["梅沙", "盐田", "沙头角", "海山"],
        function_area: false,
        towns: false,
    },
    District {
        code: 440305,
        has_gb2260: true,
        name: "南山区",
        census_2020: 1_795_826,
        area_km2: 187.5,
        growth: 1.008,
        registered_share: 0.58,
        streets: &[
            "南头", "南山", "沙河", "蛇口", "招商", "粤海", "桃源", "西丽",
        ],
        function_area: false,
        towns: false,
    },
    District {
        code: 440306,
        has_gb2260: true,
        name: "宝安区",
        census_2020: 4_476_554,
        area_km2: 397.0,
        growth: 1.012,
        registered_share: 0.19,
        streets: &[
            "新安", "西乡", "航城", "福永", "福海", "沙井", "新桥", "松岗", "燕罗", "石岩",
        ],
        function_area: false,
        towns: false,
    },
    District {
        code: 440307,
        has_gb2260: true,
        name: "龙岗区",
        census_2020: 3_979_037,
        area_km2: 388.0,
        growth: 1.010,
        registered_share: 0.24,
        streets: &[
            "平湖", "坪地", "南湾", "坂田", "布吉", "龙城", "龙岗", "横岗", "吉华", "宝龙", "园山",
        ],
        function_area: false,
        towns: false,
    },
    District {
        code: 440309,
        has_gb2260: true,
        name: "龙华区",
        census_2020: 2_528_872,
        area_km2: 175.6,
        growth: 1.015,
        registered_share: 0.18,
        streets: &["观湖", "民治", "龙华", "大浪", "福城", "观澜"],
        function_area: false,
        towns: false,
    },
    District {
        code: 440310,
        has_gb2260: true,
        name: "坪山区",
        census_2020: 551_333,
        area_km2: 166.3,
        growth: 1.018,
        registered_share: 0.28,
        streets: &["坪山", "马峦", "碧岭", "石井", "坑梓", "龙田"],
        function_area: false,
        towns: false,
    },
    District {
        code: 440311,
        has_gb2260: true,
        name: "光明区",
        census_2020: 1_095_289,
        area_km2: 156.0,
        growth: 1.020,
        registered_share: 0.20,
        streets: &["光明", "公明", "新湖", "凤凰", "玉塘", "马田"],
        function_area: false,
        towns: false,
    },
    District {
        code: 440391,
        has_gb2260: false,
        name: "大鹏新区",
        census_2020: 156_236,
        area_km2: 295.8,
        growth: 1.005,
        registered_share: 0.34,
        streets: &["葵涌", "大鹏", "南澳"],
        function_area: true,
        towns: false,
    },
    District {
        code: 440392,
        has_gb2260: false,
        name: "深汕特别合作区",
        census_2020: 65_663,
        area_km2: 460.4,
        growth: 1.030,
        registered_share: 0.80,
        streets: &["鹅埠", "小漠", "赤石", "鲘门"],
        function_area: true,
        towns: true,
    },
];

impl District {
    /// 12-digit statistical region code: the district code followed by zeros.
    pub fn region_code(&self) -> String {
        format!("{}000000", self.code)
    }

    /// 12-digit code of the `index`-th street (0-based): sequence numbers are
    /// assigned in list order (not the official sequence numbers).
    pub fn street_code(&self, index: usize) -> String {
        format!("{}{:03}000", self.code, index + 1)
    }

    /// 街道 or 镇.
    pub fn street_suffix(&self) -> &'static str {
        if self.towns {
            "镇"
        } else {
            "街道"
        }
    }

    /// Short form used inside org names: 福田, 大鹏新区 → 大鹏.
    pub fn short_name(&self) -> &'static str {
        match self.name {
            "大鹏新区" => "大鹏",
            "深汕特别合作区" => "深汕",
            other => other.strip_suffix("区").unwrap_or(other),
        }
    }

    /// Residents in `year` (est. after 2020): census × growth, rescaled so the
    /// districts add up to the city total of that year.
    pub fn population(&self, year: i16) -> u64 {
        let Some(&(_, city_total)) = CITY_POPULATION.iter().find(|(y, _)| *y == year) else {
            return self.census_2020;
        };
        let years = f64::from(year - 2020);
        let grown = |d: &District| d.census_2020 as f64 * d.growth.powf(years);
        let total: f64 = DISTRICTS.iter().map(grown).sum();
        (grown(self) / total * city_total as f64).round() as u64
    }
}

/// A street's fixed share of its district's residents (est.): the same for every
/// seed, derived from the street's name so it is stable, between 0.6 and 1.4 of
/// an equal share before normalising.
pub fn street_weights(district: &District) -> Vec<f64> {
    let raw: Vec<f64> = district
        .streets
        .iter()
        .map(|name| {
            let hash = name.bytes().fold(0x811c_9dc5u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            });
            0.6 + 0.8 * f64::from(hash % 1000) / 999.0
        })
        .collect();
    let total: f64 = raw.iter().sum();
    raw.into_iter().map(|w| w / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn census_figures_add_up_to_the_city() {
        let total: u64 = DISTRICTS.iter().map(|d| d.census_2020).sum();
        assert_eq!(total, 17_560_061);
        let streets: usize = DISTRICTS.iter().map(|d| d.streets.len()).sum();
        assert_eq!(streets, 78, "74 街道 and 4 镇");
        for (year, city) in CITY_POPULATION {
            let sum: u64 = DISTRICTS.iter().map(|d| d.population(year)).sum();
            assert!(sum.abs_diff(city) <= 11, "{year}: {sum} vs {city}");
        }
        assert_eq!(DISTRICTS[0].population(2020), 1_553_225);
    }

    #[test]
    fn outer_districts_grow_faster_than_the_centre() {
        let share = |d: &District, y| d.population(y) as f64 / d.population(2020) as f64;
        let futian = &DISTRICTS[0];
        let guangming = &DISTRICTS[8];
        assert!(share(guangming, 2024) > share(futian, 2024) + 0.05);
    }

    #[test]
    fn street_weights_sum_to_one() {
        for district in &DISTRICTS {
            let weights = street_weights(district);
            assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            assert!(weights.iter().all(|w| *w > 0.0));
        }
        assert_eq!(DISTRICTS[0].street_code(9), "440304010000");
        assert_eq!(DISTRICTS[9].short_name(), "大鹏");
    }
}
