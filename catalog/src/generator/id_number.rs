//! Identification numbers in their national formats: 公民身份号码 (GB 11643),
//! 组织机构代码 (GB 11714) and 统一社会信用代码 (GB 32100), with valid check
//! characters, plus the keyed hash and mask under which ID numbers are stored.

use chrono::{Datelike, NaiveDate};
use sha2::{Digest, Sha256};

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// The GB 11643 check character (ISO 7064 MOD 11-2) of the first 17 digits.
pub fn id_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(char::from(ID_CHECK[(sum % 11) as usize]))
}

/// Build an 18-character ID number: area code, birth date, 3-digit sequence
/// (odd for men, even for women), check character.
pub fn id_number(area_code: u32, birth: NaiveDate, sequence: u32, male: bool) -> String {
    let mut sequence = sequence % 1000;
    if (sequence % 2 == 1) != male {
        sequence = (sequence + 1) % 1000;
    }
    let first17 = format!(
        "{area_code:06}{:04}{:02}{:02}{sequence:03}",
        birth.year(),
        birth.month(),
        birth.day()
    );
    let check = id_check_char(&first17).unwrap_or('0');
    format!("{first17}{check}")
}

/// Whether an 18-character ID number is well formed: digits, a real birth date,
/// and the right check character.
pub fn is_valid_id_number(id: &str) -> bool {
    if id.len() != 18 || !id.is_ascii() {
        return false;
    }
    let (first17, check) = id.split_at(17);
    let birth_ok = NaiveDate::parse_from_str(&first17[6..14], "%Y%m%d").is_ok();
    birth_ok && id_check_char(first17).map(String::from).as_deref() == Some(check)
}

/// `440304********123X`: area code and last four kept, the birth date hidden.
pub fn mask_id_number(id: &str) -> String {
    if id.len() != 18 || !id.is_ascii() {
        return "*".repeat(id.chars().count());
    }
    format!("{}********{}", &id[..6], &id[14..])
}

/// HMAC-SHA256 of the ID number under `key`, first 16 bytes in hex. A keyed hash,
/// because the ID space is small enough to enumerate: without the key the
/// digests cannot be reversed by trying every ID.
pub fn id_hash(key: &[u8], id: &str) -> String {
    const BLOCK: usize = 64;
    let mut key_block = [0u8; BLOCK];
    if key.len() > BLOCK {
        key_block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        key_block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(key_block.map(|b| b ^ 0x36));
    inner.update(id.as_bytes());
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(key_block.map(|b| b ^ 0x5c));
    outer.update(inner);
    hex::encode(&outer.finalize()[..16])
}

const ORG_CODE_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// GB 11714 organisation code: 8 digits and a check character.
pub fn org_code(body: u32) -> String {
    let digits = format!("{:08}", body % 100_000_000);
    let sum: u32 = digits
        .bytes()
        .zip(ORG_CODE_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        n => char::from_digit(n, 10).unwrap_or('0'),
    };
    format!("{digits}{check}")
}

const USCC_CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The GB 32100 check character of the first 17 characters, if they are valid.
pub fn uscc_check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (byte, weight) in first17.bytes().zip(USCC_WEIGHTS) {
        let value = USCC_CHARSET.iter().position(|&c| c == byte)? as u32;
        sum += value * weight;
    }
    let check = (31 - sum % 31) % 31;
    Some(char::from(USCC_CHARSET[check as usize]))
}

/// 统一社会信用代码 of a body registered by the 机构编制 office: '1', the kind
/// ('1' 机关, '2' 事业单位, '3' 群团, '9' 其他), the 6-digit area code, the
/// organisation code and the check character.
pub fn uscc(kind: char, area_code: u32, org_code_body: u32) -> String {
    let org = org_code(org_code_body).replace('X', "0");
    let first17 = format!("1{kind}{area_code:06}{org}");
    let check = uscc_check_char(&first17).unwrap_or('0');
    format!("{first17}{check}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::calendar::ymd;

    #[test]
    fn id_numbers_follow_gb_11643() {
        // The standard's worked example: 11010519491231002X.
        assert_eq!(id_check_char("11010519491231002"), Some('X'));
        assert!(is_valid_id_number("11010519491231002X"));
        assert!(!is_valid_id_number("110105194912310021"));
        assert!(!is_valid_id_number("11010519491331002X"), "month 13");
        let id = id_number(440304, ymd(1985, 7, 9), 123, true);
        assert_eq!(&id[..14], "44030419850709");
        assert!(is_valid_id_number(&id));
        assert_eq!((id.as_bytes()[16] - b'0') % 2, 1, "men have odd sequences");
        let id = id_number(440304, ymd(1985, 7, 9), 123, false);
        assert_eq!(
            (id.as_bytes()[16] - b'0') % 2,
            0,
            "women have even sequences"
        );
        assert!(is_valid_id_number(&id));
    }

    #[test]
    fn masks_and_hashes() {
        assert_eq!(mask_id_number("11010519491231002X"), "110105********002X");
        assert_eq!(mask_id_number("short"), "*****");
        let a = id_hash(b"key", "11010519491231002X");
        assert_eq!(a.len(), 32);
        assert_eq!(a, id_hash(b"key", "11010519491231002X"));
        assert_ne!(a, id_hash(b"other", "11010519491231002X"));
        // RFC 4231 test case 2 (first 16 bytes of HMAC-SHA256).
        assert_eq!(
            id_hash(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c7"
        );
    }

    #[test]
    fn organisation_codes_and_uscc_check() {
        // A published example: organisation code 12345678 → check 8 under GB 11714.
        let code = org_code(12_345_678);
        assert_eq!(code.len(), 9);
        let sum: u32 = [1u32, 2, 3, 4, 5, 6, 7, 8]
            .iter()
            .zip(ORG_CODE_WEIGHTS)
            .map(|(d, w)| d * w)
            .sum();
        let expected = match 11 - sum % 11 {
            10 => 'X',
            11 => '0',
            n => char::from_digit(n, 10).unwrap(),
        };
        assert_eq!(code.chars().last(), Some(expected));
        // A well-known valid USCC (from GB 32100's annex style): recomputing agrees.
        let uscc = uscc('1', 440300, 7_654_321);
        assert_eq!(uscc.len(), 18);
        assert!(uscc.starts_with("11440300"));
        assert_eq!(uscc_check_char(&uscc[..17]), uscc.chars().last());
        assert_eq!(uscc_check_char("91350100M000100Y4"), Some('3'));
    }
}
