"""The pure core of triage guidance (智能导诊): a symptom description in Chinese → the red flags
it raises, or the department kinds it suggests with the words that led there. No I/O, no clock.

1. The text is normalised (NFKC: full-width digits and punctuation) and cut into clauses at
   punctuation; each clause is segmented with jieba (one tokenizer per process, the knowledge
   base's synonyms added as words, so that "喘不上气" or "从来没这么疼过" stay whole).
2. Terms are found as the longest synonym made of whole tokens (so a synonym that contains a
   negation word is matched before the negation is), then as gapped synonyms ("胸口…疼": up
   to six characters between, fillers such as "那儿" / "一阵阵" not counted, never a negation
   word among them) where nothing else matched; a gapped synonym may list alternatives on
   either side ("胸|胸口|心口…疼|痛|绞痛": a body part with a sensation), so that phrasing is
   covered by combination, not one by one. A modifier (a term without weights: "钻心地疼",
   "突然") may sit inside a gap; a one-character synonym ("抽", "烧") gives way to a gapped
   synonym of another term it starts or ends ("抽…烟" is smoking, "小腿…抽" a cramp).
3. Negation: a negation word ("没有", "不", "否认", …) negates the terms after it in its clause
   until a contrast word ("但是", "就是", "还有", …) or a word of what followed ("没几分钟就
   喘不上气": 就, 又, 才 …); "发烧倒是没有" negates the term before.
4. Temperatures ("39度5", "三十九度五", "体温38.6"), ages ("3岁", "两个月大", "孩子出生十几天",
   "宝宝六周大"; not "生完孩子两个月") and blood pressure ("160/100", "血压150", "高压一百八";
   from 180 / 120 a crisis term red flags read) are read from the text.
5. Red flags are combinations of terms (each alternative: all of its groups, a group: any of
   its terms); any red flag makes the answer urgent and nothing else is suggested.
6. Otherwise each mentioned term adds its weights to department kinds; a child under
   `child_age_below` sees paediatrics first, a pregnancy obstetrics first, a man no
   gynaecology; nothing recognised answers the fallback kind."""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jieba

# "没有胸痛" / "不发烧" / "否认胸闷": the terms after these, up to a contrast word, are negated
NEGATORS = frozenset({"没有", "没", "无", "不", "未", "否认", "不是", "并没有", "并没", "并不", "从没", "从没有",
                      "从来没有", "从来没", "从未", "没再", "不再", "没怎么", "不怎么", "不会", "未见", "没出现",
                      "也没有", "也没", "都没有", "都没", "也不", "都不", "没发现", "无明显", "没什么", "没啥",
                      "没想过", "没有想过", "从没想过", "从来没想过", "没有过", "没出过", "没见", "不见"})
# "没有发烧,但是咳嗽": these end a negation's reach within the clause
RESETS = frozenset({"但", "但是", "可是", "可", "不过", "只是", "就是", "却", "而是", "倒是", "反而", "然而", "还有",
                    "然后", "后来", "现在", "有点", "有点儿", "有些", "有", "也有", "还", "老是", "总是", "经常",
                    "一直", "偶尔", "主要", "主要是", "只有", "而且", "并且", "同时", "另外", "反倒",
                    # "没几分钟就喘不上气" / "没说两句又迷糊过去": what follows happened
                    "就", "又", "才", "结果", "便", "马上", "立马", "立刻"})
# "发烧倒是没有" / "烧已经退了": a term followed by these (and the clause's end) is negated
# "以前有过一次晕倒": history, not what brings the patient now; it weighs for departments but
# raises no red flag (except the standing conditions of Settings.standing_terms: "去年放过支架"),
# up to a word that brings the text back to now
HISTORY = frozenset({"以前", "之前", "去年", "前年", "曾经", "过去", "上次", "上回", "小时候", "以往", "既往",
                     "年前", "早年", "那年", "当年", "年轻时", "年轻的时候", "前几年", "几年前", "多年前", "做过",
                     "得过", "患过"})
NOW = frozenset({"现在", "这次", "今天", "最近", "刚才", "刚刚", "突然", "这两天", "这几天", "目前", "此刻", "今早",
                 "今晚", "昨天", "昨晚", "但是", "但", "可是", "不过", "又", "这回", "眼下", "今天早上"})
POST_NEGATORS = frozenset({"没有", "没", "无", "好了", "退了", "消了", "没了", "不明显", "没什么", "消失了"})
POST_FILLERS = frozenset({"也", "都", "倒", "倒是", "是", "还", "并", "已经", "早就", "基本", "基本上", "早"})
CLAUSE_END = frozenset({"了", "过", "啊", "呀", "的", "哦", "吧", "呢"})
NEGATION_CHARS = frozenset("不没无未别非否")
GAP = "…"
ALT = "|"
MAX_GAP = 6
# words in a gap that do not count towards MAX_GAP ("心口那儿一阵阵钻心地疼"): where, how often, how much
GAP_FILLERS = re.compile("那儿|那块儿|那块|那里|这块儿|这块|这里|这儿|那一块|这一块|那个地方|这个地方|一阵一阵|一阵阵|"
                         "一阵子|一阵|一股一股|一股股|一大口一大口|一口一口|大口大口|一大口|好几口|哗哗地|哗哗的|哗哗|有点儿|有点|有些|特别|非常|时不时|总是|老是|隐隐地|隐隐|一样|似的|钻心地|经常|偶尔|地|的")
MAX_SPAN = MAX_GAP + 8  # the longest gap searched, fillers included
MAX_NGRAM = 8

_CLAUSES = re.compile(r"[,，。.!！?？;；:：\s~…\-—/|()（）\[\]【】\"“”'‘’]+")
_TEMPERATURE = re.compile(r"(\d{2}(?:\.\d{1,2})?)\s*(?:度|°c|°|℃)(\d)?")
_TEMPERATURE_WORD = re.compile(r"(?:体温|烧到|烧了|发烧|高烧|发热|温度)(?:是|有|达到|到了|到|都|快|差不多)?"
                               r"\s*(\d{2}(?:\.\d{1,2})?)")
_AGE = re.compile(r"(\d{1,3})\s*(?:周岁|岁)")
_CN_AGE = re.compile(r"([一二两三四五六七八九十]{1,3})(?:多)?\s*(?:周岁|岁)")
# ages of a baby: "两个月大", "孩子才一个半月", "出生二十多天", "宝宝四十天", "孩子六周大" (not "生完孩子两个月",
# "发烧两个月了" or "第二天大脚趾…")
_BABY = r"(?:宝宝|孩子|小孩|婴儿|儿子|女儿|闺女|娃|孙子|孙女|外孙|外孙女|小宝|宝贝)"
_NUM = r"(\d{1,2}|[一二两三四五六七八九十几]{1,3})"
_MONTHS = re.compile(_NUM + r"\s*个(?:多|半)?月(?:大(?![便小])|的宝宝|的孩子|的婴儿|的小孩|的娃)"
                     r"|(?<!生完)(?<!生了)(?<!生下)(?<!生)(?<!怀)(?<!带)" + _BABY
                     + r"(?:才|刚|刚刚|现在|今年|已经)?(?:满)?" + _NUM
                     + r"\s*个(?:多|半)?月(?!(?:以来|来|以前|之前|前|后|里))")
_DAYS_OLD = re.compile(r"(?:出生|生下来|生了)(?:才|刚)?\s*" + _NUM + r"\s*多?天"
                       r"|(?<![第\d一二两三四五六七八九十几])" + _NUM + r"\s*多?天"
                       r"(?:大(?=$|[的了啦,，。\s]|宝宝|孩子)|的宝宝|的孩子|的婴儿|的小孩|的娃)"
                       r"|" + _BABY + r"(?:才|刚|刚刚|出生)?" + _NUM + r"\s*多?天(?:大)?(?![了前后])")
_WEEKS_OLD = re.compile(_BABY + r"(?:才|刚|刚刚|出生)?" + _NUM + r"\s*(?:周|个星期)(?:大)?(?![了前后])")
_BLOOD_PRESSURE = re.compile(r"(?:血压|高压|低压)[^0-9]{0,6}(\d{2,3})\s*/\s*(\d{2,3})")
# "血压160" / "高压一百八" / "低压110": one reading, the systolic unless it says 低压 / 舒张压
_ONE_PRESSURE = re.compile(r"(血压|高压|收缩压|低压|舒张压)[^0-9/,，。;；!！?？]{0,6}?"
                           r"(\d{2,3}|[一两二]百[一二三四五六七八九]?十?[一二三四五六七八九]?)(?![\d/.])")
# "三十九度五" / "四十度": a temperature in Chinese numerals
_CN_TEMPERATURE = re.compile(r"([三四]十[一二三四五六七八九]?)(?:度|℃)([一二三四五六七八九])?")
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_SOME = {"几": 5}  # "十几天" / "二十几天": about the middle


# --- the knowledge base, compiled ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Kind:
    """A department kind (心内科, 儿科, …); `sex` limits it to one sex (妇科, 产科)."""

    code: str
    name_zh: str
    name_en: str
    sex: str | None = None
    sort: int = 0


@dataclass(frozen=True, slots=True)
class Term:
    """A symptom or a circumstance with its synonyms (the patient's words) and what it weighs
    for each department kind (none: a term that only red flags read, such as "突然")."""

    id: str
    name_zh: str
    name_en: str
    synonyms: tuple[str, ...]
    weights: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RedFlag:
    """A combination of terms that needs the emergency department now. `when` holds the
    alternatives; an alternative fires when each of its groups has one of its terms."""

    id: str
    name_zh: str
    name_en: str
    message_zh: str
    message_en: str
    when: tuple[tuple[frozenset[str], ...], ...]
    hotline_zh: str | None = None
    hotline_en: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """The modifiers: who goes where first, and what answers when nothing is recognised."""

    child_age_below: int = 14
    child_kind: str = "pediatrics"
    pregnancy_kind: str = "obstetrics"
    fallback_kind: str = "general"
    child_term: str = "child"
    infant_term: str = "infant"
    pregnancy_term: str = "pregnancy"
    fever_term: str = "fever"
    high_fever_term: str = "high_fever"
    hypertension_term: str = "hypertension"
    hypertensive_crisis_term: str = "hypertensive_crisis"
    crisis_systolic_from: int = 180
    crisis_diastolic_from: int = 120
    high_fever_from: float = 39.0
    fever_from: float = 37.3
    max_departments: int = 3
    keep_share: float = 0.3  # a kind is suggested when it scores at least this share of the first
    standing_terms: frozenset[str] = frozenset()  # conditions red flags read even when told as history


class Knowledge:
    """The compiled knowledge base: synonyms indexed, gapped synonyms split, kinds by code."""

    def __init__(self, kinds: Iterable[Kind], terms: Iterable[Term], red_flags: Iterable[RedFlag],
                 settings: Settings | None = None) -> None:
        self.kinds = {k.code: k for k in kinds}
        self.terms = {t.id: t for t in terms}
        self.red_flags = tuple(red_flags)
        self.settings = settings or Settings()
        self.index: dict[str, str] = {}
        self.gapped: list[tuple[str, str, str, str]] = []  # (head, tail, synonym, term id)
        for term in self.terms.values():
            for syn in term.synonyms:
                if GAP in syn:  # "胸|胸口…疼|痛": every head with every tail
                    heads, _, tails = syn.partition(GAP)
                    self.gapped.extend((h, t, syn, term.id) for h in heads.split(ALT) for t in tails.split(ALT))
                else:
                    self.index.setdefault(syn, term.id)
        self.gapped.sort(key=lambda g: -len(g[0]) - len(g[1]))
        self.gapped_at: dict[str, list[tuple[str, str, str, str]]] = {}  # first character → gapped
        self.heads = frozenset(g[0] for g in self.gapped)
        self.gapped_to: dict[str, list[tuple[str, str, str, str]]] = {}  # one-character tail → gapped
        for g in self.gapped:
            self.gapped_at.setdefault(g[0][0], []).append(g)
            if len(g[1]) == 1:
                self.gapped_to.setdefault(g[1], []).append(g)
        self.words = frozenset(w for w in self.index if len(w) > 1)
        self.longest = max((len(w) for w in self.index), default=1)


# --- segmentation ------------------------------------------------------------------------------

class _Segmenter:
    """One jieba tokenizer for the process. The knowledge base's words are synced into it when
    they change (a removed word gets the base dictionary's frequency back); cutting and
    syncing take turns under a lock (requests run in a thread pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._words: frozenset[str] = frozenset()
        self._base: dict[str, int] = {}

    def cut(self, words: frozenset[str], text: str) -> list[str]:
        with self._lock:
            if self._tokenizer is None:
                logging.getLogger("jieba").setLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                self._tokenizer = tokenizer
            if words != self._words:
                self._sync(words)
            return [t for t in self._tokenizer.cut(text, HMM=False) if t.strip()]

    def _sync(self, words: frozenset[str]) -> None:
        tok = self._tokenizer
        for word in self._words - words:
            base = self._base.pop(word, 0)
            tok.add_word(word, base) if base else tok.del_word(word)
        for word in sorted(words - self._words):
            self._base[word] = int(tok.FREQ.get(word) or 0)
            tok.add_word(word)
        self._words = words


_segmenter = _Segmenter()


# --- analysis ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Mention:
    """A term found in the text: `said` is the patient's own words for it; `past` when the
    clause speaks of history ("以前…")."""

    term: str
    said: str
    negated: bool = False
    past: bool = False


@dataclass(frozen=True, slots=True)
class Recommendation:
    kind: str
    score: int
    said: tuple[str, ...]  # the patient's words that led here, strongest first
    terms: tuple[str, ...]
    modifier: str | None = None  # "child" | "pregnancy" | "fallback"


@dataclass(frozen=True, slots=True)
class Analysis:
    urgent: bool
    red_flags: tuple[RedFlag, ...]
    departments: tuple[Recommendation, ...]
    mentions: tuple[Mention, ...]
    age: int | None
    child: bool
    pregnant: bool

    @property
    def recognised(self) -> tuple[Mention, ...]:
        return tuple(m for m in self.mentions if not m.negated)

    @property
    def denied(self) -> tuple[Mention, ...]:
        return tuple(m for m in self.mentions if m.negated)

    @property
    def unmatched(self) -> bool:
        return not self.urgent and bool(self.departments) and self.departments[0].modifier == "fallback"


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().strip()


def clauses(text: str) -> list[str]:
    return [c for c in _CLAUSES.split(text) if c]


def _cn_number(raw: str) -> int | None:
    if raw.isdigit():
        return int(raw)
    if raw == "十":
        return 10
    if "十" in raw:
        tens, _, ones = raw.partition("十")
        digits = _CN_DIGITS | _SOME
        value = (_CN_DIGITS.get(tens, 0) if tens else 1) * 10 + (digits.get(ones, 0) if ones else 0)
        return value if (not tens or tens in _CN_DIGITS) and (not ones or ones in digits) else None
    return _CN_DIGITS.get(raw) if len(raw) == 1 else None


def _cn_hundreds(raw: str) -> int | None:
    """"一百六" / "一百六十" / "一百八十五" / "两百" → the number (blood pressure readings)."""
    if raw.isdigit():
        return int(raw)
    head, _, rest = raw.partition("百")
    hundreds = _CN_DIGITS.get(head)
    if hundreds is None:
        return None
    if not rest:
        return hundreds * 100
    if "十" in rest:
        tens = _cn_number(rest)
        return None if tens is None else hundreds * 100 + tens
    return hundreds * 100 + _CN_DIGITS[rest] * 10 if len(rest) == 1 and rest in _CN_DIGITS else None


def age_in(text: str) -> tuple[int | None, bool]:
    """(age in whole years, an infant under three months) as the text says, if it does."""
    m = _MONTHS.search(text)
    if m and (months := _cn_number(m.group(1) or m.group(2))) is not None:
        return months // 12, months < 3
    m = _DAYS_OLD.search(text)
    if m and (days := _cn_number(m.group(1) or m.group(2) or m.group(3))) is not None and days <= 90:
        return 0, True
    m = _WEEKS_OLD.search(text)
    if m and (weeks := _cn_number(m.group(1))) is not None and weeks <= 52:
        return 0, weeks < 13
    m = _AGE.search(text) or _CN_AGE.search(text)
    if m and (years := _cn_number(m.group(1))) is not None and years <= 120:
        return years, False
    return None, False


def temperature_in(text: str) -> float | None:
    """The highest body temperature the text names (35–43 °C), if any."""
    found: list[float] = []
    for m in _TEMPERATURE.finditer(text):
        value = float(m.group(1))
        if m.group(2) and "." not in m.group(1):  # 39度5
            value += int(m.group(2)) / 10
        found.append(value)
    found.extend(float(m.group(1)) for m in _TEMPERATURE_WORD.finditer(text))
    for m in _CN_TEMPERATURE.finditer(text):
        whole = _cn_number(m.group(1))
        if whole is not None:
            found.append(whole + (_CN_DIGITS[m.group(2)] / 10 if m.group(2) else 0))
    plausible = [v for v in found if 35.0 <= v <= 43.0]
    return max(plausible) if plausible else None


def blood_pressure_in(text: str) -> tuple[int, int] | None:
    """The highest blood pressure reading the text names ("血压160/100"), if any."""
    found = [(int(m.group(1)), int(m.group(2))) for m in _BLOOD_PRESSURE.finditer(text)]
    plausible = [p for p in found if 60 <= p[0] <= 300 and 30 <= p[1] <= 200 and p[0] > p[1]]
    return max(plausible) if plausible else None


def high_pressure_in(text: str) -> tuple[str, int, int] | None:
    """A high blood pressure reading (≥ 140 systolic or ≥ 90 diastolic) as (the patient's words,
    systolic, diastolic; 0 where not said): "160/100", or one number ("血压160", "高压一百八",
    "低压105"), if the text names one."""
    if (pair := blood_pressure_in(text)) is not None:
        return (f"{pair[0]}/{pair[1]}", *pair) if pair[0] >= 140 or pair[1] >= 90 else None
    best: tuple[str, int, int] | None = None
    for m in _ONE_PRESSURE.finditer(text):
        value = _cn_hundreds(m.group(2))
        if value is None:
            continue
        if m.group(1) in ("低压", "舒张压"):
            found = (m.group(0), 0, value) if 90 <= value <= 200 else None
        else:
            found = (m.group(0), value, 0) if 140 <= value <= 300 else None
        if found and (best is None or found[1:] > best[1:]):
            best = found
    return best


def _post_negated(tokens: Sequence[str], j: int) -> bool:
    """"发烧倒是没有": after the term only fillers, a negation and the clause's end."""
    k = j
    while k < len(tokens) and tokens[k] in POST_FILLERS:
        k += 1
    for width in (2, 1):
        if k + width <= len(tokens) and "".join(tokens[k:k + width]) in POST_NEGATORS:
            rest = tokens[k + width:]
            return all(t in CLAUSE_END for t in rest)
    return False


def _in_token(kb: Knowledge, token: str, *, whole: bool = False) -> list[tuple[str, str]]:
    """Synonyms inside one token that no whole-token synonym covers ("硬邦邦的", "流感疫苗"):
    the longest first, then the longest in what is left on either side (two characters or more)."""
    for size in range(min(len(token) - (0 if whole else 1), kb.longest), 1, -1):
        for start in range(len(token) - size + 1):
            word = token[start:start + size]
            if word in kb.index:
                left = _in_token(kb, token[:start], whole=True) if start > 1 else []
                rest = token[start + size:]
                right = _in_token(kb, rest, whole=True) if len(rest) > 1 else []
                return [*left, (kb.index[word], word), *right]
    return []


def _clause_mentions(kb: Knowledge, clause: str) -> list[Mention]:
    tokens = _segmenter.cut(kb.words, clause)
    found: list[Mention] = []
    spans: list[tuple[int, int]] = []  # character spans of the matches (gapped ones must not overlap)
    negated = past = False
    i, pos = 0, 0
    while i < len(tokens):
        hit: tuple[str, str, int] | None = None
        for j in range(min(len(tokens), i + MAX_NGRAM), i, -1):
            word = "".join(tokens[i:j])
            if word in kb.index:
                hit = (kb.index[word], word, j)
                break
        token = tokens[i]
        if hit is None and len(token) > 2 and (inner := _in_token(kb, token)):
            prefix_negated = token[0] in NEGATION_CHARS and not token.startswith(inner[0][1])
            after = _post_negated(tokens, i + 1)
            found.extend(Mention(term, word, negated or prefix_negated or after, past) for term, word in inner)
            if any(_weighs(kb, term) for term, _word in inner):
                spans.append((pos, pos + len(token)))
            pos += len(token)
            i += 1
            continue
        if hit is not None and len(hit[1]) == 1 and _yields(kb, clause, pos, hit[0]):
            hit = None  # "抽了三十年烟": the lone 抽 gives way to the pattern "抽…烟"
            negated, past = _step(token, negated, past)
            pos += len(token)
            i += 1
            continue
        if hit is not None:
            term, word, j = hit
            found.append(Mention(term, word, negated or _post_negated(tokens, j), past))
            if _weighs(kb, term):  # a modifier ("钻心地疼", "突然") may sit inside a gapped synonym
                spans.append((pos, pos + len(word)))
            pos += len(word)
            i = j
            continue
        negated, past = _step(token, negated, past)
        pos += len(token)
        i += 1
    found.extend(_gapped(kb, clause, tokens, spans, {m.term for m in found}))
    return found


def _gap_len(gap: str) -> int:
    """The length of a gap as MAX_GAP counts it: the fillers left out."""
    return len(GAP_FILLERS.sub("", gap)) if len(gap) > MAX_GAP else len(gap)


def _yields(kb: Knowledge, clause: str, pos: int, term: str) -> bool:
    """Whether a gapped synonym of another term starts or ends with the character at `pos` and
    matches there, so that a one-character synonym ("抽", "吐", "烧") gives way to it ("抽…烟"
    for smoking, "小腿…抽" for a cramp)."""
    for head, tail, _syn, other in kb.gapped_at.get(clause[pos], ()):
        if other == term or not clause.startswith(head, pos):
            continue
        begin = pos + len(head)
        end = clause.find(tail, begin, begin + MAX_SPAN + len(tail))
        if end >= 0 and _gap_len(clause[begin:end]) <= MAX_GAP and not NEGATION_CHARS.intersection(clause[begin:end]):
            return True
    for head, tail, _syn, other in kb.gapped_to.get(clause[pos], ()):
        if other == term or tail != clause[pos]:
            continue
        start = clause.rfind(head, max(0, pos - MAX_SPAN - len(head)), pos)
        gap = clause[start + len(head):pos] if start >= 0 else ""
        if start >= 0 and _gap_len(gap) <= MAX_GAP and not NEGATION_CHARS.intersection(gap):
            return True
    return False


def _weighs(kb: Knowledge, term: str) -> bool:
    """Whether a term is a symptom (weighs for a kind), not a modifier only red flags read."""
    found = kb.terms.get(term)
    return found is None or bool(found.weights)


def _state_at(tokens: Sequence[str], char: int) -> tuple[bool, bool]:
    """Whether a negation word, and whether a history word, reach the token at offset `char`."""
    negated = past = False
    pos = 0
    for token in tokens:
        if pos >= char:
            break
        negated, past = _step(token, negated, past)
        pos += len(token)
    return negated, past


def _step(token: str, negated: bool, past: bool) -> tuple[bool, bool]:
    """The negation and history state after `token`: a negator sets negation until a reset word,
    a history word sets the past until a word of now."""
    if token in NEGATORS:
        negated = True
    elif token in RESETS:
        negated = False
    if token in HISTORY:
        past = True
    elif token in NOW:
        past = False
    return negated, past


def _gapped(kb: Knowledge, clause: str, tokens: Sequence[str], spans: list[tuple[int, int]],
            seen: set[str]) -> list[Mention]:
    """Gapped synonyms ("胸口…疼") where the clause has no other mention of the term. The gap may
    hold other mentions ("嘴角往右边歪"); the head must start a word ("低头…疼" is no headache)
    and the tail start or end one ("肿起来"), neither inside another mention ("头两天肚子疼" is
    no headache either), and no negation word may sit in the gap ("头不疼")."""
    out: list[Mention] = []
    starts, ends, pos = set(), set(), 0
    for token in tokens:
        starts.add(pos)
        pos += len(token)
        ends.add(pos)
    present = {h for h in kb.heads if h in clause}  # most patterns' heads are not in a clause at all
    for head, tail, _syn, term in kb.gapped:
        if term in seen or head not in present or tail not in clause:
            continue
        start = clause.find(head)
        while start >= 0:
            begin = start + len(head)
            end = clause.find(tail, begin, begin + MAX_SPAN + len(tail))
            if end >= 0 and _gap_len(clause[begin:end]) > MAX_GAP:
                end = -1
            if end >= 0:
                gap = clause[begin:end]
                stop = end + len(tail)
                inside_word = (start not in starts or (end not in starts and stop not in ends)
                               or any(a < start < b or a < end < b for a, b in spans))
                if not inside_word and not NEGATION_CHARS.intersection(gap):
                    out.append(Mention(term, clause[start:stop], *_state_at(tokens, start)))
                    spans.append((start, stop))
                    seen.add(term)
                    break
            start = clause.find(head, start + 1)
    return out


def mentions_in(kb: Knowledge, text: str) -> list[Mention]:
    """Every term the text mentions, in order, negated or not (a term said both ways counts as said)."""
    out: list[Mention] = []
    for clause in clauses(normalise(text)):
        out.extend(_clause_mentions(kb, clause))
    return out


def _fires(flag: RedFlag, present: set[str]) -> bool:
    return any(all(group & present for group in alternative) for alternative in flag.when)


def analyse(kb: Knowledge, text: str, *, age: int | None = None, sex: str | None = None,
            pregnant: bool | None = None) -> Analysis:
    """Red flags first; without any, the department kinds with their reasons."""
    s = kb.settings
    norm = normalise(text)
    mentions = mentions_in(kb, norm)
    said_age, infant = age_in(norm)
    eff_age = said_age if said_age is not None else age
    present = {m.term for m in mentions if not m.negated and (not m.past or m.term in s.standing_terms)}
    temperature = temperature_in(norm)
    if temperature is not None and temperature >= s.fever_from:
        term = s.high_fever_term if temperature >= s.high_fever_from else s.fever_term
        mentions.append(Mention(term, f"{temperature:g}℃"))
        present.add(term)
    if (pressure := high_pressure_in(norm)) is not None:
        mentions.append(Mention(s.hypertension_term, pressure[0]))
        present.add(s.hypertension_term)
        if pressure[1] >= s.crisis_systolic_from or pressure[2] >= s.crisis_diastolic_from:
            present.add(s.hypertensive_crisis_term)  # read by red flags only (with a symptom)
    if s.high_fever_term in present:
        present.add(s.fever_term)
    if infant:
        present.add(s.infant_term)
    if s.infant_term in present or (eff_age is not None and eff_age < s.child_age_below):
        present.add(s.child_term)
    if pregnant:
        present.add(s.pregnancy_term)
    child = s.child_term in present
    is_pregnant = s.pregnancy_term in present
    fired = tuple(f for f in kb.red_flags if _fires(f, present))
    if fired:
        return Analysis(True, fired, (), tuple(mentions), eff_age, child, is_pregnant)
    sex = "female" if is_pregnant else sex
    ranked = _rank(kb, mentions, sex=sex, child=child, pregnant=is_pregnant)
    return Analysis(False, (), ranked, tuple(mentions), eff_age, child, is_pregnant)


def _allowed(kind: Kind | None, sex: str | None) -> bool:
    return kind is not None and (kind.sex is None or sex not in ("male", "female") or kind.sex == sex)


def _rank(kb: Knowledge, mentions: Sequence[Mention], *, sex: str | None, child: bool, pregnant: bool
          ) -> tuple[Recommendation, ...]:
    s = kb.settings
    scores: dict[str, int] = {}
    reasons: dict[str, list[tuple[int, str, str]]] = {}
    counted: set[str] = set()
    for m in mentions:
        term = kb.terms.get(m.term)
        if m.negated or term is None or m.term in counted:
            continue
        counted.add(m.term)
        for kind, weight in term.weights.items():
            if weight > 0 and _allowed(kb.kinds.get(kind), sex):
                scores[kind] = scores.get(kind, 0) + weight
                reasons.setdefault(kind, []).append((weight, m.said, m.term))
    modifiers: dict[str, str] = {}
    for flag, code, reason in ((child, s.child_kind, "child"), (pregnant, s.pregnancy_kind, "pregnancy")):
        if flag and code in kb.kinds:
            scores[code] = max(scores.values(), default=0) + 1
            modifiers[code] = reason
    if pregnant:
        for kind in [k for k, v in kb.kinds.items() if v.sex == "female" and k != s.pregnancy_kind]:
            scores.pop(kind, None)
    if not scores:
        return (Recommendation(s.fallback_kind, 0, (), (), "fallback"),)
    order = sorted(scores, key=lambda k: (-scores[k], kb.kinds[k].sort, k))
    top = scores[order[0]]
    out: list[Recommendation] = []
    for kind in order[:s.max_departments]:
        if scores[kind] < top * s.keep_share:
            break
        why = sorted(reasons.get(kind, []), key=lambda r: -r[0])
        said = tuple(dict.fromkeys(r[1] for r in why))
        out.append(Recommendation(kind, scores[kind], said, tuple(dict.fromkeys(r[2] for r in why)),
                                  modifiers.get(kind)))
    return tuple(out)
