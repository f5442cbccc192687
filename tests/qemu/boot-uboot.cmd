# U-Boot boot script (hush) for Debian's stock qemu_arm64 U-Boot: RAUC's A/B scheme.
# Compiled with `mkimage -A arm64 -O linux -T script -C none -d boot-uboot.cmd boot.scr`
# and run by distro boot from partition 1.
#
# State: BOOT_ORDER (bootnames in order) and BOOT_<x>_LEFT (attempts left, hex) in the
# environment file uboot.env on partition 1, in libubootenv's single-copy format
# (CRC-32 + data): `env export -c` writes exactly that, `env import -c` checks the CRC, and
# abota's uboot backend changes it from Linux through libubootenv (/etc/fw_env.config).
# Each boot takes one attempt from the first slot in BOOT_ORDER that has one left and
# writes the counter back (hex, as setexpr computes; counters stay below 10) before the kernel starts, so a boot that never reaches
# `abota status mark-good` uses up the slot's attempts and the next slot boots.
setenv envsize 0x4000
setenv envaddr 0x40300000
setenv BOOT_ORDER
setenv BOOT_A_LEFT
setenv BOOT_B_LEFT
if load virtio 0:1 ${envaddr} uboot.env && env import -c ${envaddr} ${envsize} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT; then
  echo "ABOTA-UBOOT: env BOOT_ORDER=${BOOT_ORDER} BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT}"
else
  echo "ABOTA-UBOOT: uboot.env missing or bad CRC, using defaults"
fi
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
setenv bootpart
setenv slot
for BOOT_SLOT in ${BOOT_ORDER}; do
  if test -n "${bootpart}"; then
    true
  elif test "${BOOT_SLOT}" = "A"; then
    if test ${BOOT_A_LEFT} -gt 0; then
      setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
      setenv bootpart 4
      setenv slot A
    fi
  elif test "${BOOT_SLOT}" = "B"; then
    if test ${BOOT_B_LEFT} -gt 0; then
      setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
      setenv bootpart 5
      setenv slot B
    fi
  fi
done
if test -z "${bootpart}"; then
  # RAUC's documented behaviour: no slot left -> re-arm both and start over
  echo "ABOTA-UBOOT: no bootable slot left, resetting the counters"
  setenv BOOT_A_LEFT 3
  setenv BOOT_B_LEFT 3
  env export -c -s ${envsize} ${envaddr} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
  fatwrite virtio 0:1 ${envaddr} uboot.env ${envsize}
  reset
fi
echo "ABOTA-UBOOT: booting slot ${slot} (partition ${bootpart}), BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT}"
env export -c -s ${envsize} ${envaddr} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
fatwrite virtio 0:1 ${envaddr} uboot.env ${envsize}
load virtio 0:${bootpart} ${kernel_addr_r} Image
load virtio 0:${bootpart} ${ramdisk_addr_r} initrd.img
setenv bootargs "console=ttyAMA0 loglevel=1 rdinit=/init panic=-1 rauc.slot=${slot} abota.boot=uboot"
booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}
echo "ABOTA-UBOOT: booti failed"
reset
