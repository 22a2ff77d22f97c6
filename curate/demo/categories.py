"""Category and licence tables of the COCO and Objects365 formats (demo subsets where noted)."""

from __future__ import annotations

_COCO = """1 person person|2 vehicle bicycle|3 vehicle car|4 vehicle motorcycle|5 vehicle airplane|6 vehicle bus|7 vehicle train
|8 vehicle truck|9 vehicle boat|10 outdoor traffic light|11 outdoor fire hydrant|13 outdoor stop sign|14 outdoor parking meter
|15 outdoor bench|16 animal bird|17 animal cat|18 animal dog|19 animal horse|20 animal sheep|21 animal cow|22 animal elephant
|23 animal bear|24 animal zebra|25 animal giraffe|27 accessory backpack|28 accessory umbrella|31 accessory handbag|32 accessory tie
|33 accessory suitcase|34 sports frisbee|35 sports skis|36 sports snowboard|37 sports sports ball|38 sports kite
|39 sports baseball bat|40 sports baseball glove|41 sports skateboard|42 sports surfboard|43 sports tennis racket
|44 kitchen bottle|46 kitchen wine glass|47 kitchen cup|48 kitchen fork|49 kitchen knife|50 kitchen spoon|51 kitchen bowl
|52 food banana|53 food apple|54 food sandwich|55 food orange|56 food broccoli|57 food carrot|58 food hot dog|59 food pizza
|60 food donut|61 food cake|62 furniture chair|63 furniture couch|64 furniture potted plant|65 furniture bed
|67 furniture dining table|70 furniture toilet|72 electronic tv|73 electronic laptop|74 electronic mouse|75 electronic remote
|76 electronic keyboard|77 electronic cell phone|78 appliance microwave|79 appliance oven|80 appliance toaster|81 appliance sink
|82 appliance refrigerator|84 indoor book|85 indoor clock|86 indoor vase|87 indoor scissors|88 indoor teddy bear
|89 indoor hair drier|90 indoor toothbrush"""


def coco_categories() -> list[dict]:
    """The 80 COCO categories with their non-contiguous ids (12, 26, 29, 30, 45, 66, 68, 69, 71, 83 absent)."""
    out = []
    for item in _COCO.replace("\n", "").split("|"):
        cid, sup, name = item.split(" ", 2)
        out.append({"supercategory": sup, "id": int(cid), "name": name})
    return out


COCO_LICENSES = [
    {
        "url": "http://creativecommons.org/licenses/by-nc-sa/2.0/",
        "id": 1,
        "name": "Attribution-NonCommercial-ShareAlike License",
    },
    {"url": "http://creativecommons.org/licenses/by-nc/2.0/", "id": 2, "name": "Attribution-NonCommercial License"},
    {
        "url": "http://creativecommons.org/licenses/by-nc-nd/2.0/",
        "id": 3,
        "name": "Attribution-NonCommercial-NoDerivs License",
    },
    {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License"},
    {"url": "http://creativecommons.org/licenses/by-sa/2.0/", "id": 5, "name": "Attribution-ShareAlike License"},
    {"url": "http://creativecommons.org/licenses/by-nd/2.0/", "id": 6, "name": "Attribution-NoDerivs License"},
    {"url": "http://flickr.com/commons/usage/", "id": 7, "name": "No known copyright restrictions"},
    {"url": "http://www.usa.gov/copyright.shtml", "id": 8, "name": "United States Government Work"},
]

# A demo subset of Objects365 v2 names, spelled as in the v2 JSON (typos and trailing spaces kept).
# The first ids follow the v2 list; the rest are demo ids.
_O365 = [
    "Person",
    "Sneakers",
    "Chair",
    "Other Shoes",
    "Hat",
    "Car",
    "Lamp",
    "Glasses",
    "Bottle",
    "Desk",
    "Cup",
    "Street Lights",
    "Cabinet/shelf",
    "Handbag/Satchel",
    "Bracelet",
    "Plate",
    "Picture/Frame",
    "Helmet",
    "Book",
    "Gloves",
    "Storage box",
    "Boat",
    "Leather Shoes",
    "Flower",
    "Bench",
    "Potted Plant",
    "Bowl/Basin",
    "Flag",
    "Pillow",
    "Boots",
    "Vase",
    "Microphone",
    "Necklace",
    "Ring",
    "SUV",
    "Wine Glass",
    "Belt",
    "Moniter/TV",
    "Clock",
    "Stuffed Toy",
    "Soccer",
    "Ballon",
    "Bakset",
    "Mushroon",
    "Campel",
    "Buttefly",
    "Noddles",
    "Table Teniis paddle",
    "Cigar/Cigarette ",
    "Formula 1 ",
    "Table Tennis ",
]


def objects365_categories(order_seed: int = 0) -> list[dict]:
    """Objects365-style categories ``{name, id}``, listed out of id order as in the real files."""
    cats = [{"name": n, "id": i + 1} for i, n in enumerate(_O365)]
    k = 7 + order_seed % 5
    return cats[k:] + cats[:k]
