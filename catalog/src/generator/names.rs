//! Chinese personal names with a believable surname distribution.

use super::rng::Rng;

/// Common surnames, most frequent first; weights fall off roughly as in
/// published surname rankings.
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏",
    "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛", "闫", "段", "雷", "侯",
    "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵", "万", "钱", "严", "覃", "武", "戴",
    "莫", "孔", "向", "汤", "欧阳", "司马",
];

const MALE_CHARS: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "旭", "宁", "龙", "林", "洋", "阳", "博", "文",
    "志", "建", "国", "峰", "亮", "成", "东", "海", "振", "晨", "睿", "泽", "思", "嘉", "航", "铭",
];

const FEMALE_CHARS: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "玲", "英", "燕", "萍", "红", "婷", "雪",
    "琳", "晶", "颖", "倩", "慧", "莉", "洁", "佳", "欣", "怡", "悦", "璐", "丹", "蕾", "薇", "瑶",
    "雯", "琴", "梅", "兰", "月", "思", "嘉", "晓", "子", "诗", "雨", "文", "宁", "琪", "璇", "涵",
];

/// A full name: surname plus one or two given-name characters.
pub fn person_name(rng: &mut Rng, male: bool) -> String {
    let weights: Vec<f64> = (0..SURNAMES.len())
        .map(|rank| 1.0 / (rank as f64 + 4.0))
        .collect();
    let surname = SURNAMES[rng.weighted(&weights)];
    let chars = if male { MALE_CHARS } else { FEMALE_CHARS };
    let mut name = String::from(surname);
    let first: &&str = rng.pick(chars);
    name.push_str(first);
    if rng.chance(0.7) {
        let second: &&str = rng.pick(chars);
        name.push_str(second);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_two_to_four_characters_and_start_with_a_surname() {
        let mut rng = Rng::new(3, "names", 0);
        for i in 0..1000 {
            let name = person_name(&mut rng, i % 2 == 0);
            let n = name.chars().count();
            assert!((2..=4).contains(&n), "{name}");
            assert!(SURNAMES.iter().any(|s| name.starts_with(s)), "{name}");
        }
    }
}
