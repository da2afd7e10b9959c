"""Generates murmur2_partitions.tsv: the partitions the Java client's default partitioner gives keys.

Independent of this project: it uses kafka-python's DefaultPartitioner algorithm (murmur2 of the key
bytes, & 0x7fffffff, modulo the partition count), from PyPI:

    python3 -m venv /tmp/kpy && /tmp/kpy/bin/pip install kafka-python==3.0.12
    /tmp/kpy/bin/python tests/data/generate_murmur2_partitions.py > tests/data/murmur2_partitions.tsv
"""
from kafka.partitioner.default import murmur2

keys = (
    [b"", b"a", b"ab", b"abc", b"abcd", b"abcde", b"21", b"foobar", b"key", b"KEY", b"0", b"1", b"42", b"-1"]
    + [f"customer-{i}".encode() for i in range(16)]
    + [f"order:{i * 7919}".encode() for i in range(8)]
    + ["é".encode(), "naïve café".encode(), "日本語".encode(), "Ωmega".encode(), "🚀".encode(),
       "clé-🔑-ключ".encode(), "Straße".encode()]
    + [b"x" * 100, b"a-little-bit-long-string", b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
       ("long-key-" * 40).encode(), bytes(range(256)), b"\x00", b"\xff\xfe\xfd", b" ", b"tab\tkey"]
)
print("# key_hex\tp3\tp7\tp12\tkey (escaped, for reading)")
for key in keys:
    parts = [(murmur2(key) & 0x7FFFFFFF) % n for n in (3, 7, 12)]
    print("\t".join([key.hex(), *map(str, parts), repr(key)[2:-1]]))
