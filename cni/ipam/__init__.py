"""host-local style IP address management: ranges from the config, one file per allocated IP.

    ranges.py   the IPAM section of a network config → range sets (subnet, first/last, gateway)
    store.py    the on-disk allocation store and the allocator (lock, reserve, release, GC)

The on-disk format is the reference host-local plugin's, byte for byte, so either plugin can read
(and clean up after) the other, and a student can `ls /var/lib/cni/networks/<net>/` and `cat` a file
to see which container holds which address.
"""
