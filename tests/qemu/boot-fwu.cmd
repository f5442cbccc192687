# U-Boot boot script (hush) for Debian's stock qemu_arm64 U-Boot: the bank comes from
# abota's Arm FWU metadata (DEN0118 v2, as TF-A BL2 reads it on STM32MP boards).
# Compiled with `mkimage -A arm64 -O linux -T script -C none -d boot-fwu.cmd boot.scr`.
#
# Debian's U-Boot has no FWU support and QEMU no TF-A, so this script plays BL2's part:
#  * reads metadata1 (partition 2), checks metadata_size and the CRC-32 over the rest;
#    if that copy is bad, metadata2 (partition 3); with neither it stops;
#  * boots active_index when that bank is ACCEPTED; when it is VALID (a trial), counts
#    the trial boots in the environment file uboot.env (FWU_TRIAL_ID = the metadata CRC,
#    so every metadata update abota writes starts a new trial; FWU_TRIAL_LEFT = 3 boots)
#    and boots previous_active_index once they are used up; INVALID -> previous;
#  * writes FWU_INFO (bits 3:0 boot index, 7:4 trial counter, as TF-A's TAMP register)
#    into the file fwu_info on partition 1, which abota reads ([fwu] fwu-info).
# The metadata is never written here: abota's fwu backend reports the fallback as a
# rollback (booted bank != active_index) and `mark-good` on the old bank repairs it.
setenv envsize 0x4000
setenv envaddr 0x40300000
setenv mdaddr 0x40310000
setenv infoaddr 0x40320000
setenv crcaddr 0x40330000
setenv FWU_TRIAL_ID
setenv FWU_TRIAL_LEFT
if load virtio 0:1 ${envaddr} uboot.env && env import -c ${envaddr} ${envsize} FWU_TRIAL_ID FWU_TRIAL_LEFT; then
  echo "ABOTA-FWU: env FWU_TRIAL_ID=${FWU_TRIAL_ID} FWU_TRIAL_LEFT=${FWU_TRIAL_LEFT}"
else
  echo "ABOTA-FWU: uboot.env missing or bad CRC, no trial in progress"
fi
setenv mdok
for mdpart in 2 3; do
  if test -z "${mdok}"; then
    part start virtio 0 ${mdpart} mdstart
    virtio read ${mdaddr} ${mdstart} 1
    setexpr a ${mdaddr} + 0x10
    setexpr.l mdsize *${a}
    # this board's shape: version 2, 2 banks, 1 image = 0x78 bytes
    if test "${mdsize}" = "78"; then
      setexpr body ${mdaddr} + 4
      setexpr clen ${mdsize} - 4
      # crc32 stores the result big-endian at crcaddr; the metadata holds it
      # little-endian (no `crc32 -v` in this build): compare byte i with byte 3-i
      crc32 ${body} ${clen} ${crcaddr}
      setexpr.l mdstored *${mdaddr}
      setenv crcok 1
      for i in 0 1 2 3; do
        setexpr sa ${mdaddr} + ${i}
        setexpr ca ${crcaddr} + 3
        setexpr ca ${ca} - ${i}
        setexpr.b sb *${sa}
        setexpr.b cb *${ca}
        test "${sb}" = "${cb}" || setenv crcok
      done
      if test -n "${crcok}"; then
        setenv mdok ${mdpart}
      else
        echo "ABOTA-FWU: metadata in partition ${mdpart}: CRC mismatch (stored ${mdstored})"
      fi
    else
      echo "ABOTA-FWU: metadata in partition ${mdpart}: bad metadata_size ${mdsize}"
    fi
  fi
done
if test -z "${mdok}"; then
  echo "ABOTA-FWU: no valid FWU metadata, cannot boot"
  exit
fi
setexpr a ${mdaddr} + 8
setexpr.l active *${a}
setexpr a ${mdaddr} + 0xc
setexpr.l previous *${a}
setexpr a ${mdaddr} + 0x18
setexpr a ${a} + ${active}
setexpr.b state *${a}
echo "ABOTA-FWU: metadata partition ${mdok} CRC OK: active_index=${active} previous_active_index=${previous} state=${state}"
setenv bank
setenv counter 3
if test "${state}" = "fc"; then
  setenv bank ${active}
  setenv FWU_TRIAL_ID
  setenv FWU_TRIAL_LEFT
elif test "${state}" = "fe"; then
  if test "${FWU_TRIAL_ID}" != "${mdstored}"; then
    setenv FWU_TRIAL_ID ${mdstored}
    setenv FWU_TRIAL_LEFT 3
  fi
  if test "${FWU_TRIAL_LEFT}" != "0"; then
    setexpr FWU_TRIAL_LEFT ${FWU_TRIAL_LEFT} - 1
    setenv counter ${FWU_TRIAL_LEFT}
    setenv bank ${active}
    echo "ABOTA-FWU: trial boot of bank ${active}, ${FWU_TRIAL_LEFT} left"
  else
    setenv counter 0
    setenv bank ${previous}
    echo "ABOTA-FWU: trial of bank ${active} used up, booting previous bank ${previous}"
  fi
else
  setenv counter 0
  setenv bank ${previous}
  echo "ABOTA-FWU: active bank ${active} is not bootable, booting previous bank ${previous}"
fi
if test "${bank}" = "0"; then
  setenv slot A
  setenv bootpart 4
elif test "${bank}" = "1"; then
  setenv slot B
  setenv bootpart 5
else
  echo "ABOTA-FWU: bank ${bank} has no bootfs"
  exit
fi
setexpr info ${counter} * 0x10
setexpr info ${info} + ${bank}
mw.l ${infoaddr} ${info}
fatwrite virtio 0:1 ${infoaddr} fwu_info 4
env export -c -s ${envsize} ${envaddr} FWU_TRIAL_ID FWU_TRIAL_LEFT
fatwrite virtio 0:1 ${envaddr} uboot.env ${envsize}
echo "ABOTA-FWU: booting bank ${bank} slot ${slot} (partition ${bootpart}), FWU_INFO=0x${info}"
load virtio 0:${bootpart} ${kernel_addr_r} Image
load virtio 0:${bootpart} ${ramdisk_addr_r} initrd.img
setenv bootargs "console=ttyAMA0 loglevel=1 rdinit=/init panic=-1 rauc.slot=${slot} abota.boot=fwu"
booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}
echo "ABOTA-FWU: booti failed"
reset
