#!/usr/bin/env python3
"""Derive the simulator's compact data files from the metadata corpus.

Usage: tools/derive-simulator-data.py [CORPUS_DIR] [OUT_DIR]
Defaults: /work/shared/corpus and tests/simulator/data (relative to the repository root).

The output is deterministic: running it twice on the same corpus gives byte-identical files.
See tests/simulator/data/README.md for what each file holds.
"""

import json
import os
import re
import sys
from collections import Counter, defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/corpus"
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tests", "simulator", "data")

# Typed public entities whose data entity is known, where property overlap alone would not decide.
KNOWN_MATCHES = {"CustomerV3": "CustCustomerV3Entity"}


def load(name):
    with open(os.path.join(CORPUS, name), encoding="utf-8") as f:
        return json.load(f)


def pascal_from_words(text):
    """'Customers V3' -> 'CustomersV3'; None when the text cannot make an OData identifier."""
    tokens = re.findall(r"[A-Za-z0-9]+", text or "")
    if not tokens:
        return None
    name = "".join(t[0].upper() + t[1:] for t in tokens)
    return name if name[0].isalpha() else None


def split_version(name):
    """'CustomersV3' -> ('Customers', 'V3'); a trailing version or digit run stays with the name."""
    m = re.match(r"^(.*?)([Vv]\d+|\d+)?$", name)
    return m.group(1), m.group(2) or ""


def singular(word):
    if word.endswith("ies") and len(word) > 3:
        return word[:-3] + "y"
    for tail in ("sses", "xes", "ches", "shes"):
        if word.endswith(tail):
            return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 1:
        return word[:-1]
    return word


def plural(word):
    if word.endswith("s"):
        return word
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiouAEIOU":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


def names_from_display(display):
    """Public entity name and collection name from a display name, as F&O usually forms them."""
    collection = pascal_from_words(display)
    if not collection:
        return None
    stem, version = split_version(collection)
    if not stem:
        return None
    entity = singular(stem) + version
    if entity == collection:
        collection = plural(stem) + version
    return entity, collection


def names_from_aot(aot_name):
    """'RetailPosBatch2Entity' -> ('RetailPosBatch2', 'RetailPosBatch2s')."""
    stem = re.sub(r"(Data)?Entity(_[A-Z]{2})?$", r"\2", aot_name) or aot_name
    base, version = split_version(stem)
    if base and version:
        return stem, plural(base) + version
    return stem, plural(stem)


def odata_type(prop):
    """Ballerina OpenAPI property -> OData type name (or the bare enum name)."""
    if "enum" in prop:
        return "#" + prop["enum"]
    kind, fmt = prop.get("type"), prop.get("format")
    if kind == "integer":
        return "Edm.Int64" if fmt == "int64" else "Edm.Int32"
    if kind == "number":
        return "Edm.Decimal"
    if kind == "boolean":
        return "Edm.Boolean"
    if kind == "string":
        if fmt == "date-time":
            # OpenAPI has no separate date type here; F&O dates are named ...Date.
            return "Edm.Date" if prop["name"].endswith("Date") else "Edm.DateTimeOffset"
        if fmt == "uuid":
            return "Edm.Guid"
        if fmt == "byte":
            return "Edm.Binary"
    return "Edm.String"


def match_typed(typed, cdm):
    """Pair typed public entities with CDM data entities by property overlap and name."""
    attrs = {e["name"]: {a["name"] for a in e["attributes"]} for e in cdm}
    by_attr = defaultdict(set)
    for name, names in attrs.items():
        for a in names:
            by_attr[a].add(name)
    candidates = []
    for p in typed:
        props = {x["name"] for x in p["properties"]} - {"dataAreaId"}
        counts = Counter()
        for a in sorted(props):
            if len(by_attr[a]) < 200:
                counts.update(sorted(by_attr[a]))
        # Sorted, not most_common(): ties must not depend on hash order.
        for entity, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]:
            shared = len(props & attrs[entity])
            jaccard = shared / len(props | attrs[entity])
            named = p["name"].lower() in entity.lower()
            if (jaccard >= 0.7 and shared >= 4) or (named and jaccard >= 0.3):
                candidates.append((-(jaccard + (0.2 if named else 0)), p["name"], entity))
    taken, pairs = set(KNOWN_MATCHES.values()), dict(KNOWN_MATCHES)
    for _, public, entity in sorted(candidates):
        if public not in pairs and entity not in taken:
            pairs[public] = entity
            taken.add(entity)
    return pairs


def main():
    cdm = load("cdm-data-entities.json")
    typed = load("public-entities.json")
    enums = load("enumerations.json")
    aot = load("aot-modules.json")
    entity_module = aot["dataEntityModule"]

    # The CDM lists two entities under two functional areas each; the first listing wins.
    seen, unique = set(), []
    for e in sorted(cdm, key=lambda e: (e["name"], e["area"])):
        if e["name"] not in seen:
            seen.add(e["name"])
            unique.append(e)
    cdm = unique
    cdm_names = {e["name"] for e in cdm}

    # The module of a CDM entity the AOT map does not know: the usual module of its functional area.
    area_modules = defaultdict(Counter)
    for e in cdm:
        if e["name"] in entity_module:
            area_modules[e["area"]][entity_module[e["name"]]] += 1

    def module_of(name, area):
        if name in entity_module:
            return entity_module[name]
        if area and area_modules[area]:
            return sorted(area_modules[area].items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        return "ApplicationSuite"

    typed_by_name = {p["name"]: p for p in typed}
    pairs = match_typed(typed, cdm)
    typed_of_entity = {entity: public for public, entity in pairs.items()}

    # AOT-only data entities (no attribute list); dotted names are extensions, not entities.
    aot_only = sorted(n for n in entity_module if n not in cdm_names and "." not in n)
    # Remaining typed entities pair with a data entity named after them, if exactly one is.
    all_names = sorted(cdm_names) + aot_only
    for p in sorted(typed, key=lambda p: p["name"]):
        if p["name"] in pairs:
            continue
        suffix = p["name"].lower() + "entity"
        hits = [n for n in all_names if n.lower().endswith(suffix) and n not in typed_of_entity]
        if len(hits) == 1:
            pairs[p["name"]] = hits[0]
            typed_of_entity[hits[0]] = p["name"]

    used_public, used_collections = set(), set()
    for p in typed:
        used_public.add(p["name"])
        used_collections.add(p["entitySetName"])

    def public_names(name, display):
        if name in typed_of_entity:
            p = typed_by_name[typed_of_entity[name]]
            return p["name"], p["entitySetName"]
        stem, collection = names_from_aot(name)
        options = [names_from_display(display), (stem, collection)]
        options += [(f"{stem}{n}", f"{collection}{n}") for n in range(2, 10)]
        for option in options:
            if option and option[0] not in used_public and option[1] not in used_collections:
                used_public.add(option[0])
                used_collections.add(option[1])
                return option
        raise SystemExit(f"no unique public name for {name}")

    def typed_block(public):
        p = typed_by_name[public]
        return {"k": p["keys"], "p": [[x["name"], odata_type(x)] for x in p["properties"]]}

    entities = []
    for e in cdm:
        public, collection = public_names(e["name"], e.get("displayName"))
        item = {"n": e["name"], "a": e["area"], "m": module_of(e["name"], e["area"]),
                "p": public, "s": collection}
        if e.get("displayName"):
            item["d"] = e["displayName"]
        if any(r["name"] == "Relationship_PrimaryCompanyContextRelationship" for r in e["relationships"]):
            item["c"] = 1
        item["f"] = [[a["name"], a["displayName"]] if a.get("displayName") else a["name"]
                     for a in e["attributes"] if a.get("name")]
        rels = []
        for r in e["relationships"]:
            m = re.match(r"^Relationship_(.+?)Relationship$", r["name"])
            if m and r["target"] in cdm_names and r["target"] != e["name"]:
                rels.append([m.group(1), r["target"]])
        if rels:
            item["r"] = rels
        if e["name"] in typed_of_entity:
            item["t"] = typed_block(typed_of_entity[e["name"]])
        entities.append(item)
    for name in aot_only:
        public, collection = public_names(name, None)
        item = {"n": name, "m": entity_module[name], "p": public, "s": collection}
        if name in typed_of_entity:
            item["t"] = typed_block(typed_of_entity[name])
        entities.append(item)
    # Typed public entities without a known data entity: the data entity takes the usual name.
    taken = {e["n"] for e in entities}
    for p in sorted(typed, key=lambda p: p["name"]):
        if p["name"] in pairs:
            continue
        name = p["name"] + "Entity"
        if name in taken:
            continue
        taken.add(name)
        entities.append({"n": name, "m": "ApplicationSuite", "p": p["name"], "s": p["entitySetName"],
                         "t": typed_block(p["name"])})

    enumerations = [[e["name"], e["members"]] for e in sorted(enums, key=lambda e: e["name"])]
    modules = sorted(set(aot["modules"]))

    os.makedirs(OUT, exist_ok=True)
    for name, value in (("entities.json", entities), ("enumerations.json", enumerations),
                        ("modules.json", modules)):
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            json.dump(value, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
    typed_count = sum(1 for e in entities if "t" in e)
    print(f"{len(entities)} data entities ({typed_count} typed), {len(enumerations)} enumerations, "
          f"{len(modules)} modules -> {OUT}")


if __name__ == "__main__":
    main()
