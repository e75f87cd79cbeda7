"""Detectors for what a gameday leaks into telemetry, as mask patterns of the redaction policy.

Every detector is a regular expression (no model, nothing loaded at run time). They complement the
core patterns of ``hub.redaction.policy`` (e-mail, SSN, MRN, dates of birth after a cue, phone,
names after a cue) with:

- ``phi_key``: the value under a PHI-named key in JSON, YAML or ``key=value`` text, at any nesting
  depth, with any spacing and with escaped quotes (JSON inside a JSON string):
  ``{"mrn" : "004417"}``, ``{\\"patient_name\\":\\"Ada\\"}``, ``dob=1984-03-12``;
- ``dob_any``: dates in the formats people type (``03/12/1984``, ``12-03-1984``, ``1984/03/12``,
  ``12-Mar-1984``, ``12 March 1984``, ``March 12 1984``), and ISO dates with a 19xx or early 20xx
  year (``1984-03-12``; the hub's own timestamps are later than that);
- ``insurance``: insurance, policy, member, subscriber, group and Medicare/Medicaid ids after a cue,
  and Medicare beneficiary identifiers (MBI) without one;
- ``address``: street addresses (number, street name, street type, unit), PO boxes, and the
  ``City, ST 02115`` tail;
- ``ip``: IPv4 and IPv6 addresses;
- ``name_known``: a capitalised first name from a list of common given names followed by a
  capitalised word (``Jane Doe``), ``Doe, Jane``, and ``jane.doe`` / ``jane-doe`` / ``jane_doe``
  tokens (URL path segments, user names);
- ``name_clinical``: capitalised words next to clinical words (``admitted Jane Doe``, ``Doe Jane was
  discharged``, ``chart for Okafor``);
- ``phone_cue``: digits after ``phone``, ``tel``, ``mobile``, ``cell``, ``fax`` in any grouping,
  and E.164 numbers (``+16175550142``).

Limits: a name with no cue, no clinical word next to it and a given name outside the list is not
found; that is the price of not loading a model. Structural columns (``hub.redaction.columns``)
refuse anything that is not their shape, so names in ids, enums and service names never need it.
"""

from __future__ import annotations

import re
from typing import Final

from hub.redaction.given_names import CENSUS_GIVEN_NAMES

#: Common given names (US census and hospital registries), lower case. Used by ``name_known``.
GIVEN_NAMES: Final[tuple[str, ...]] = tuple(sorted(set("""
aaron abigail adam adrian aiden alan albert alexander alexis alice alicia allison alma alyssa amanda amber amelia
amy ana andrea andrew angela anita ann anna anne annie anthony antonio april arthur ashley audrey austin ava
barbara benjamin bernard beth betty beverly bill billy bobby bonnie brandon brenda brian brittany bruce bryan
carl carlos carmen carol caroline carolyn catherine charles charlotte cheryl chloe chris christian christina
christine christopher cindy claire clara clarence craig crystal cynthia daisy dale daniel danielle david dawn
dean deborah debra denise dennis derek diana diane dolores don donald donna doris dorothy douglas dylan earl
edith edward eileen elaine eleanor elijah elizabeth ella ellen emily emma eric erica erin esther ethan eugene
eva evelyn frances francis frank fred gabriel gary george gerald gladys gloria grace gregory hannah harold
harry hazel heather helen henry holly howard isabella jack jacob jacqueline james jamie jane janet janice jason
jean jeffrey jennifer jeremy jerry jesse jessica jill joan joanne joe john johnny jonathan jordan jose joseph
joshua joyce juan judith judy julia julie justin karen katherine kathleen kathryn kathy katie kayla keith kelly
kenneth kevin kimberly kyle larry laura lauren lawrence leah lee leonard leslie liam lillian linda lisa lois
lori louis louise lucas lucy luis madison margaret maria marie marilyn mark martha martin mary mason matthew
megan melissa michael michelle mildred monica nancy natalie nathan nicholas nicole noah norma olivia oscar
pamela patricia patrick paul paula peggy peter philip phyllis rachel ralph randy raymond rebecca regina richard
rita robert roberto roger ronald rose ruby russell ruth ryan samantha samuel sandra sara sarah scott sean
sharon shirley sophia stephanie stephen steven susan tammy teresa terry theresa thomas timothy tina todd tony
tracy tyler valerie vanessa victor victoria vincent virginia walter wanda wayne william willie yolanda zachary
aisha ahmed fatima mohammed omar priya rahul wei mei hiroshi yuki olga ivan dmitri sven ingrid pierre sofia
mateo diego camila valentina chen jin minh nguyen thanh kwame ama chidi ngozi
""".split())))

#: Words of clinical context next to which capitalised words are taken for a person's name.
_VERBS_BEFORE: Final = ("admitted", "admitting", "discharged", "discharging", "transferred", "diagnosed", "triaged",
                        "seen", "treated", "examined", "intubated", "sedated", "prescribed", "referred",
                        "registered", "scheduled", "readmitted")
_NOUNS_BEFORE: Final = ("chart", "record", "records", "lab", "labs", "result", "results", "meds", "medication",
                        "medications", "allergy", "allergies", "order", "orders", "vitals", "note", "notes",
                        "prescription", "prescriptions", "encounter", "visit", "admission", "discharge",
                        "referral", "appointment", "bed", "room", "mar", "emar")
CLINICAL_AFTER: Final = (
    r"(?:was|is|has\s+been|had|got|being|will\s+be)?\s*"
    r"(?:admitted|discharged|transferred|diagnosed|triaged|seen|treated|intubated|sedated|prescribed|"
    r"readmitted|registered|allergic|presented|presents|complains|reports|deceased|expired)"
)

#: Literal stems of which one is in every text ``name_clinical`` matches (a speed-up).
_CLINICAL_REQUIRES: Final = tuple("(?i)" + w for w in (
    "admit", "discharg", "transferr", "diagnos", "triag", "seen", "treat", "examined", "intubat", "sedat",
    "prescri", "referr", "regist", "schedul", "allergic", "present", "complain", "reports",
    "deceased", "expired", "readmit", "paged", "visited", "assessed", "consulted",  # (any blank before "by")
    # the nouns before "for"/"of": "chart for", "labs of" ...
    "chart", "record", "lab", "result", "meds", "medication", "allerg", "order", "vital", "note", "encounter",
    "visit", "admission", "discharge", "referral", "appointment", "bed", "room", "mar"))

#: What ``(?i)`` matches for each ASCII letter, as a case-sensitive class (Unicode case folding adds
#: the dotted and dotless i, the Kelvin sign and the long s); checked over every code point by a test.
FOLDED: Final[dict[str, str]] = {
    **{c: f"[{c.upper()}{c}]" for c in "abcdefghijklmnopqrstuvwxyz"},
    "i": "[Ii\u0130\u0131]", "k": "[Kk\u212a]", "s": "[Ss\u017f]",
}


def trie_regex(words, fold: bool = False) -> str:
    """One regex alternation of ``words`` as a trie (``a(?:aron|bigail|...)``): compiles and
    searches much faster than a flat list of hundreds of words. ``fold``: each ASCII letter as its
    ``FOLDED`` class, what ``(?i:...)`` of the trie matches, in a case-sensitive regex (which skips a
    branch whose first letter does not fit without entering it)."""
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        ends = "" in node
        branches = [(FOLDED[ch] if fold and ch in FOLDED else re.escape(ch)) + build(child)
                    for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:
            body = ("(?:" + body + ")?") if len(branches) > 1 or len(branches[0]) > 1 else body + "?"
        return body

    return build(trie)


#: The given names in any case (``(?i:<trie>)``, as folded classes: faster).
_GIVEN: Final = trie_regex(GIVEN_NAMES, fold=True)
#: The census's given names (``hub.redaction.given_names``), capitalised: matched case-sensitively.
_CENSUS: Final = trie_regex(n.capitalize() for n in CENSUS_GIVEN_NAMES)
#: Words of operations text that a capitalised pair of words is made of (``Primary Database``,
#: ``Canary Deploy``, ``Redis Cluster``, ``Blue Green``, ``North Europe``): never a person's name.
OPS_WORDS: Final = tuple(sorted(set("""
primary secondary replica database db gw gtw svc gc sweep cluster node nodes redis kafka postgres mysql mongo elastic canary deploy
deployment rollout rollback release blue green red yellow amber north south east west central europe asia africa
america us eu region zone datacenter dc cloud aws azure gcp failover outage incident gameday chaos experiment
drill load balancer gateway proxy cache queue broker topic stream api service services server backend frontend
storage bucket shard scheduler worker job batch cron pipeline monitor alert alerts dashboard health check probe
network dns cdn edge ingress router firewall vpn link switch disk volume memory cpu latency error errors timeout
the a an this that these those our your their its after before during when while then with without from into
monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
september october november december team on call oncall ops sre dev prod production staging test qa
""".split())))
_NOT_OPS: Final = rf"(?!(?:{trie_regex(OPS_WORDS, fold=True)})\b)"
CLINICAL_BEFORE: Final = (trie_regex(_VERBS_BEFORE) + r"(?:\s+by)?|(?:" + trie_regex(_NOUNS_BEFORE) + r")\s+(?:for|of)"
                          # who saw or paged a patient, read as a name: free text cannot tell staff from patient
                          + r"|(?:paged|visited|assessed|consulted)\s+by")
_CUES: Final = r"patient|pt|mr|mrs|ms|miss|mx|dr|name|the|a|an|this|that|user|member"
_CAP: Final = r"[A-Z][a-z'’]+(?:-[A-Z][a-z'’]+)?"

#: The words of which a PHI-named key holds one (each a regex that starts with a lower-case letter).
_PHI_KEY_WORDS: Final = (
    "patient", "ssn", r"social[_.-]?security", "mrn", r"medical[_.-]?record", "dob", "birth", "e-?mail", "phone",
    "mobile", "telephone", "street", "address", "zip(?:code)?", "postcode", "insurance", "insured", r"member[_.-]?id",
    "subscriber", r"policy[_.-]?(?:id|number|no)", "mbi", "medicare", "medicaid", r"first[_.-]?name", r"last[_.-]?name",
    r"full[_.-]?name", r"given[_.-]?name", r"family[_.-]?name", "surname", "maiden", "guardian", r"next[_.-]?of[_.-]?kin",
    "diagnosis", "allerg(?:y|ies)",
)


def _phi_key(words: tuple[str, ...]) -> str:
    return r"[A-Za-z0-9_.-]*(?:" + "|".join(words) + r")[A-Za-z0-9_.-]*|name|fullname|firstname|lastname"


#: Key names whose values are patient data, in any spelling (``patientName``, ``patient.name``).
PHI_KEY: Final = _phi_key(_PHI_KEY_WORDS)
#: ``PHI_KEY`` for a case-insensitive pattern, each word's first letter a case-sensitive class (the same
#: strings): the regex engine then skips a word whose first letter does not fit without entering it,
#: where it would try every word at every position of a key (``REDACTED`` before each marker's ``:``).
_PHI_KEY_FAST: Final = _phi_key(tuple(f"(?-i:{FOLDED[w[0]]})" + w[1:] for w in _PHI_KEY_WORDS))

#: A hyphenated name with an infrastructure part (``patient-api``, ``patient-api-gameday-3f9a1c``,
#: ``patients-db-replica``) names a service, gateway or experiment, not a field of a patient: text
#: such as ``patient-api-gameday: rule 'api-failing' firing`` keeps what follows it.
_NOT_SERVICE_KEY: Final = (r"(?![A-Za-z0-9_.]*(?:-[A-Za-z0-9_.]+)*-(?:api|apis|svc|service|services|gateway|gw|db|"
                           r"database|store|cache|queue|canary|shadow|primary|secondary|replica|gameday|experiment|"
                           r"exp|edge|v\d+)(?:-[A-Za-z0-9_.]+)*[ \t]*(?::|=>|=))")

#: A word of key characters followed by a separator (``:``, ``=``, ``=>``), looked for before the key's
#: alternation is tried: a speed-up only (every PHI key is such a word, so what ``phi_key`` matches is the
#: same), since the alternation is tried at every backtracking point of every word otherwise.
_BEFORE_SEPARATOR: Final = r"(?=[A-Za-z0-9_.-]*(?:[ \t]*\\*[\"'])?\s*(?::|=>|=))"

#: Not the word of a marker (``[REDACTED:name]``), which is followed by a separator but holds no PHI key:
#: a speed-up only, since every marker of a masked text would have its key alternation tried.
_NOT_MARKER: Final = r"(?!redacted:)"

# (name, pattern, ignore_case, requires)
DETECTORS: Final[tuple[tuple[str, str, bool, tuple[str, ...]], ...]] = (
    # a value under a PHI-named key: JSON (any spacing, escaped quotes), YAML, key=value
    ("phi_key",
     r"(?:\\*[\"'])?(?<![A-Za-z0-9_.-])" + _NOT_MARKER + _BEFORE_SEPARATOR + _NOT_SERVICE_KEY + r"(?:" + _PHI_KEY_FAST + r")(?:[ \t]*\\*[\"'])?\s*(?::|=>|=)\s*"
     r"(?P<value>(?!\\*[\"']?\[REDACTED:)(?!\{|\[[\s\\\"']*\[REDACTED:)(?:\[[^\]]*\]|\\*\"(?:[^\"\\]|\\+[^\"\\]|\\+\\)*?\\*\"|'[^']*'|[^\s,;&}\]\"'\\]+(?:[ \t]+(?-i:[A-Z0-9])[^\s,;&}\]\"'\\]*){0,3}"
     r"(?:(?<=[A-Za-z]{3})[ \t]+(?-i:[a-z][a-z'-]{2,})(?![\w=:.-]))?))",
     True, tuple("(?i)" + w for w in (
         "patient", "ssn", "social", "mrn", "medical", "dob", "birth", "mail", "phone", "mobile", "street",
         "address", "zip", "postcode", "insur", "member", "subscriber", "policy", "mbi", "medic", "name",
         "maiden", "guardian", "kin", "diagnosis", "allerg"))),
    # an OTLP JSON attribute whose key is PHI-named: {"key": "patient", "value": {"stringValue": "..."}}
    ("phi_attribute",
     r"\\*\"key\\*\"\s*:\s*\\*\"(?:" + PHI_KEY + r")\\*\"\s*,\s*\\*\"value\\*\"\s*:\s*\{\s*"
     r"\\*\"stringValue\\*\"\s*:\s*\\*\"(?P<value>(?!\[REDACTED:)(?:[^\"\\]|\\+[^\"\\])+?)\\*\"",
     True, ("(?i)stringvalue",)),
    # dates as people type them; ISO dates only with an early year (not the hub's timestamps)
    ("dob_any",
     r"(?<![\d/.-])\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)?\d{2}(?![\d/.-])"
     r"|(?<![\d/.-])(?:19|20)\d{2}[/.]\d{1,2}[/.]\d{1,2}(?![\d/.-])"
     r"|(?<![\d.-])(?:19\d{2}|20[01]\d)-(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])(?![\d])"
     r"|(?<![\d/.-])\d{1,2}[ -](?i:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?[ ,-]\s?(?:19|20)\d{2}(?!\d)"
     r"|\b(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?[ .-]\d{1,2}(?:st|nd|rd|th)?,?[ .-]\s?(?:19|20)\d{2}(?!\d)"
     r"|(?<![\d/.-])\d{1,2}(?i:st|nd|rd|th)\s+(?i:of\s+)?(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,?\s+(?:19|20)\d{2}(?!\d)"
     r"|(?i:\b(?:dob|birth(?:day|date)?|born)\W{0,4})(?P<value>(?:19|20)\d{6}|\d{8})(?!\d)"
     # joined to a word by a separator (``DOB-03-14-1962``, ``edge-gw-14_03_1962``): a 19xx/20xx year
     r"|(?<=[A-Za-z][-_.])(?:0?[1-9]|[12]\d|3[01])[-_.](?:0?[1-9]|[12]\d|3[01])[-_.](?:19|20)\d{2}(?!\d)",
     # (each "requires" starts with a character class: the regex engine then skips to where one fits)
     False, (r"\d\d?[/.-]\d\d?[/.-]\d", r"(?:19|20)\d\d[/.]\d",
             r"[A-Za-z][-_.]\d{1,2}[-_.]\d{1,2}[-_.](?:19|20)\d\d",
             r"(?:19\d\d|20[01]\d)-\d")
     + tuple("(?i)" + w for w in ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                  "dec", "dob", "birth", "born"))),
    # insurance / member / policy ids after a cue, Medicare beneficiary identifiers without one
    ("insurance",
     r"(?i:\b(?:insurance|insurer|policy|member|subscriber|group|plan|beneficiary|medicare|medicaid|mbi|hicn|"
     r"payer|coverage|health\s*plan)(?:[ _-]?(?:id|no|num|number|#))?\.?)[\s:#=-]{0,4}"
     r"(?P<value>(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{4,}[A-Za-z0-9])"
     r"|\b[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y]{2}\d{2}\b",
     False, tuple("(?i)" + w for w in ("insur", "policy", "member", "subscriber", "group", "plan", "beneficiary",
                                       "medicare", "medicaid", "mbi", "hicn", "payer", "coverage"))
     + (r"[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y]",)),
    # street addresses, PO boxes, "City, ST 02115"
    ("address",
     r"\b\d{1,6}[A-Za-z]?[\s_-]+(?:[NSEW]\.?[\s_-]+)?(?:[A-Z0-9][A-Za-z0-9'.]*[\s_-]+){0,4}"
     r"(?i:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|ter|"
     r"circle|cir|parkway|pkwy|highway|hwy|square|sq|trail|trl|row|close|crescent|alley|plaza)\b\.?"
     r"(?:,?\s*(?i:apt|apartment|suite|ste|unit|fl|floor|#)\.?\s*#?[A-Za-z0-9-]+)?"
     # the city, state and zip after it: "1600 Larkspur Lane, Sydney NSW 2000"
     r"(?:,[ \t]*[A-Z][a-z'’]+(?:[ \t-][A-Z][a-z'’]+){0,2}(?:,?[ \t]+[A-Z]{2,3}\b)?(?:,?[ \t]+\d{4,5}(?:-\d{4})?\b)?)?"
     r"|(?i:\bp\.?[\s_-]?o\.?[\s_-]*box)[\s_-]*\d+"
     r"|\b[A-Z][a-z]+(?:\s[A-Z][a-z]+)?,\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?\b",
     False, (r"\d",)),
    # a street named without a number after a preposition: "lives on Larkspur Lane"
    ("street_name",
     r"(?i:\b(?:on|to|at|in|from|near|off|via|of)\s+)(?P<value>(?:[A-Z][a-z'’]+\s){1,2}"
     r"(?:Street|Avenue|Road|Lane|Drive|Court|Boulevard|Terrace|Place|Crescent|Parkway|Highway|Square|Trail|Alley|Plaza)\b)",
     False, ("Street", "Avenue", "Road", "Lane", "Drive", "Court", "Boulevard", "Terrace", "Place", "Crescent",
             "Parkway", "Highway", "Square", "Trail", "Alley", "Plaza")),
    # a record number after a clinical noun: "chart 00441617", "record no. 00441618"
    ("record_cue",
     r"(?i:\b(?:chart|record|rec|encounter|enc|visit|case|account|acct|admission|episode)"
     r"(?:[ _-]?(?:no|num|number|nr|id|#))?\.?)[\s:#=-]{0,4}(?P<value>[A-Za-z]{0,3}\d{5,})(?!\d)",
     False, tuple("(?i)" + w for w in ("chart", "rec", "enc", "visit", "case", "acc", "admission", "episode"))),
    # IP addresses
    ("ip",
     # not after "v" (a version: ``payments-v2.3.1.0``); a "." after it ends a sentence (``client 10.1.2.3.``)
     r"(?<![\d.])(?<![vV])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
     r"(?!\d|\.\d)"
     r"|(?<![\w])(?<![0-9A-Fa-f]:)(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?!\w|:[0-9A-Fa-f])"
     r"|(?<![\w])(?<![0-9A-Fa-f]:)(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}"
     r"(?!\w|:[0-9A-Fa-f])",
     False, (r"\d\.\d", "::", r"[0-9A-Fa-f]:(?:[0-9A-Fa-f]{1,4}:){6}")),
    # names from the list of given names, "Last, First", and name tokens (jane.doe, jane-doe)
    ("name_known",
     rf"\b(?:{_GIVEN})(?:\b(?:\s+[A-Z]\.)?\s+{_NOT_OPS}{_CAP}|[._+-]+{_NOT_OPS}[A-Za-z][A-Za-z'-]+)",
     # the given name is followed by a blank and a capital (``Jane Doe``) or by a separator and a letter
     # (``jane.doe``): text with neither (most log lines, and most text once masked) is not searched
     False, (r"\s[A-Z]", r"[._+-][A-Za-z]")),
    ("name_known_last",
     # the surname's length is bounded: ``[A-Za-z'-]+`` followed by ``[._+-]+`` backtracked over a
     # whole "ab-ab-ab-..." run from every word start (quadratic; 43 s for a 21 KB dead letter)
     rf"(?:\b{_CAP},\s?|\b[A-Za-z][A-Za-z'-]{{1,40}}[._+-]{{1,3}})(?:{_GIVEN})\b",
     False, (",", r"\.", "_", r"\+", "-")),
    # a lower-case title joined to a word (``dr.kessmorberg``), ``mr``/``mrs`` and a lower-case word
    # (``mr brackwater``); ``dr`` and a word apart is left (disaster recovery: ``dr failover``)
    ("name_title",
     r"\b(?:(?:[Dd]r|[Mm]rs?)\.(?=[A-Za-z])|[Mm]rs?\.?[ \t]+(?=[a-z]))"
     r"(?P<value>[A-Za-z][a-z'-]{2,}(?:[ \t]+[A-Z][a-z'-]+)?)\b",
     False, ("(?i)dr.", "(?i)mr")),
    # capitalised words next to clinical words
    ("name_clinical",
     rf"(?i:\b(?:{CLINICAL_BEFORE}))\s+(?:(?i:patient|pt\.?|mr\.?|mrs\.?|ms\.?)\s+)?(?P<value>{_NOT_OPS}{_CAP}(?:\s+{_CAP}){{0,2}})\b"
     rf"|(?P<clinical_name>\b(?=[A-Z])(?!(?i:{_CUES})\b){_NOT_OPS}{_CAP}(?:\s+{_CAP}){{0,2}})(?=,?\s+(?i:{CLINICAL_AFTER})\b)",
     False, _CLINICAL_REQUIRES),
    # a capitalised pair of words next to a clinical record word: "Zebulon Ottoline, DOB ...",
    # "Zebulon Ottoline (MRN ...)", "bed 4: Zebulon Ottoline", "ward 7B Zebulon Ottoline"
    ("name_context",
     rf"(?i:\b(?:bed|ward|room|bay|cubicle)\s+[A-Za-z0-9-]{{1,5}}[:,]?)\s+(?P<value>{_NOT_OPS}{_CAP}\s+{_NOT_OPS}{_CAP})\b"
     rf"|\b(?=[A-Z])(?!(?i:{_CUES})\b){_NOT_OPS}{_CAP}\s+{_NOT_OPS}{_CAP}(?=\s*[,;:(-]?\s*(?i:dob|d\.o\.b|mrn|mr#|bed|ward|room|"
     rf"aged?|y/o|yo|born|date\s+of\s+birth)\b"
     # "Ottoline Marsh in bed 4", "... to ward 7B", "... at room 12"
     rf"|\s+(?i:in|at|to|into|from|on)\s+(?i:bed|ward|room|bay|cubicle)\s+[A-Za-z0-9-]{{1,5}}\b)",
     False, tuple("(?i)" + w for w in ("dob", "d.o.b", "mrn", "mr#", "bed", "ward", "room", "bay", "cubicle", "age",
                                       "y/o", "yo", "born", "birth"))),
    # a given name of the census list, capitalised, then a capitalised word that is not an operations
    # word: "Philippa Wexcombe called", "Abbey J. Quillfen"
    ("name_given",
     rf"\b(?:{_CENSUS})(?:\s+[A-Z]\.)?\s+{_NOT_OPS}{_CAP}\b",
     False, (r"[A-Z][a-z]+\s+[A-Z]",)),
    # record, member and account numbers without a cue: letters then 8+ digits, or 6-7 digits and a
    # suffix (XYZ751050912, MBR-76029555, BCBS-3279197-37), or 9+ digits alone (an MRN, a member
    # number); ``gw-123456`` (a short hex suffix that happens to be digits) is left
    ("long_id",
     r"(?<![\w./-])(?:(?!(?i:mrn|ssn|dob|tel|id|no|nr|mr)[-#]?\d)[A-Za-z]{1,5}[-#]?"
     r"(?:\d{8,}(?:-\d{1,4})?|\d{6,7}-\d{1,4})|\d{9,}(?:-\d{1,4})?)(?![\w./-])",
     False, (r"\d\d{5}",)),
    # phone numbers after a cue in any grouping, and E.164
    ("phone_cue",
     r"(?i:\b(?:phone|tel|telephone|mobile|cell|fax|contact|callback|pager)(?:[ _-]?(?:no|num|number|#))?\.?)"
     r"[\s:#=-]{0,4}(?P<value>\+?\d[\d ().-]{5,}\d)"
     r"|\+\d{10,15}(?!\d)"
     # a local number without area code (555-0615), not a range of sizes or times (200-1000 ms)
     r"|(?<![\w.+/:-])[2-9]\d{2}-\d{4}(?![\w.-]|\s?(?i:ms|s|sec|secs|min|b|kb|mb|gb|bytes|%|x|rps|req))",
     False, (r"\d\d\d-\d{4}", "(?i)phone", "(?i)tel", "(?i)mobile", "(?i)cell", "(?i)fax", "(?i)contact", "(?i)callback",
             "(?i)pager", r"\+")),
)
