#!/bin/busybox sh
# /init of the QEMU test guest (initramfs of each bank's bootfs).  Mounts the boot
# partition (vfat: U-Boot's environment file) and the data partition (ext4: bundles, abota's
# central slot status and resume journal), then hands the serial console to a shell the test harness types into.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /run /tmp /boot /data
for m in virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk fat vfat \
         nls_cp437 nls_ascii nls_iso8859-1 crc16 crc32c_generic mbcache jbd2 ext4; do
    insmod /lib/modules/$m.ko || echo "ABOTA-QEMU: insmod $m failed"
done
for w in $(cat /proc/cmdline); do
    case $w in
        rauc.slot=*) SLOT=${w#*=} ;;
        abota.boot=*) BOOT=${w#*=} ;;
    esac
done
i=0
while [ ! -b /dev/vda8 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
mount -t vfat /dev/vda1 /boot || echo "ABOTA-QEMU: cannot mount the boot partition"
mount /dev/vda8 /data || echo "ABOTA-QEMU: cannot mount the data partition"
ln -sf system-$BOOT.conf /etc/abota/system.conf
# abota reads the command line from this copy ([system] cmdline-file): its
# fileio_read_all() refuses /proc/cmdline (procfs reports st_size 0 -> "file changed
# while reading"); test_qemu_boot.py::test_reads_proc_cmdline tracks that bug
cat /proc/cmdline > /run/cmdline
echo "ABOTA-QEMU: booted slot=$SLOT version=$(cat /etc/abota-qemu/version) boot=$BOOT uptime=$(cut -d' ' -f1 /proc/uptime)"
if [ -e /etc/abota-qemu/panic ]; then
    # the broken update: a real kernel panic; panic=-1 resets the machine at once
    echo "ABOTA-QEMU: this image panics"
    echo 1 > /proc/sys/kernel/sysrq
    echo c > /proc/sysrq-trigger
fi
stty -echo 2>/dev/null
echo "ABOTA-QEMU: ready"
exec sh
