# Vivado block design for board pynq-z2 (xc7z020clg400-1); written by spikeforge.
# Run after the HLS export: vivado -mode batch -source build_bd.tcl
set here [file normalize [file dirname [info script]]]
create_project sf_vivado $here/vivado -part xc7z020clg400-1 -force
set_property ip_repo_paths [list $here/sf_hls] [current_project]
update_ip_catalog -rebuild
create_bd_design net
set preset 0
if {[llength [get_board_parts -quiet {tul.com.tw:pynq-z2:part0:1.0}]] > 0} {
    set_property board_part {tul.com.tw:pynq-z2:part0:1.0} [current_project]
    set preset 1
} else {
    puts "WARNING: board files for tul.com.tw:pynq-z2:part0:1.0 are not installed: the processing system keeps default DDR/MIO settings (install the board files, e.g. Vivado > Tools > Vivado Store > Boards, and rerun)"
}
create_bd_cell -type ip -vlnv [lindex [get_ipdefs -filter {NAME == processing_system7}] end] ps
apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 -config [list make_external "FIXED_IO, DDR" apply_board_preset $preset Master "Disable" Slave "Disable"] [get_bd_cells ps]
set_property -dict [list CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {100} CONFIG.PCW_USE_M_AXI_GP0 {1} CONFIG.PCW_USE_S_AXI_HP0 {1} CONFIG.PCW_USE_S_AXI_HP1 {1} CONFIG.PCW_USE_S_AXI_HP2 {1} CONFIG.PCW_USE_S_AXI_HP3 {1}] [get_bd_cells ps]
create_bd_cell -type ip -vlnv spikeforge.org:hls:sf_top:1.0 sf_top_0
# control (s_axilite, ap_ctrl_hs) on the general-purpose master
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} Master {/ps/M_AXI_GP0} Slave {/sf_top_0/s_axi_control} ddr_seg {Auto} intc_ip {Auto} master_apm {0}] [get_bd_intf_pins sf_top_0/s_axi_control]
# data: every m_axi bundle on a high-performance slave port
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} Master {/sf_top_0/m_axi_gmem_state} Slave {/ps/S_AXI_HP0} ddr_seg {Auto} intc_ip {Auto} master_apm {0}] [get_bd_intf_pins sf_top_0/m_axi_gmem_state]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} Master {/sf_top_0/m_axi_gmem_ring} Slave {/ps/S_AXI_HP1} ddr_seg {Auto} intc_ip {Auto} master_apm {0}] [get_bd_intf_pins sf_top_0/m_axi_gmem_ring]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} Master {/sf_top_0/m_axi_gmem_spk} Slave {/ps/S_AXI_HP2} ddr_seg {Auto} intc_ip {Auto} master_apm {0}] [get_bd_intf_pins sf_top_0/m_axi_gmem_spk]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} Master {/sf_top_0/m_axi_gmem_csr} Slave {/ps/S_AXI_HP3} ddr_seg {Auto} intc_ip {Auto} master_apm {0}] [get_bd_intf_pins sf_top_0/m_axi_gmem_csr]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master {Auto} Clk_slave {Auto} Clk_xbar {Auto} Master {/sf_top_0/m_axi_gmem_rec} Slave {/ps/S_AXI_HP0} ddr_seg {Auto} intc_ip {Auto} master_apm {0}] [get_bd_intf_pins sf_top_0/m_axi_gmem_rec]
assign_bd_address
validate_bd_design
save_bd_design
set wrapper [make_wrapper -files [get_files net.bd] -top]
add_files -norecurse $wrapper
set_property top net_wrapper [current_fileset]
launch_runs impl_1 -to_step write_bitstream -jobs 4
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] != "100%"} { error "implementation failed" }
file mkdir $here/overlay
file copy -force [glob $here/vivado/sf_vivado.runs/impl_1/net_wrapper.bit] $here/overlay/net.bit
set hwh [glob -nocomplain $here/vivado/sf_vivado.gen/sources_1/bd/net/hw_handoff/net.hwh $here/vivado/sf_vivado.srcs/sources_1/bd/net/hw_handoff/net.hwh]
file copy -force [lindex $hwh 0] $here/overlay/net.hwh
# the driver header Vitis HLS generated (PynqExecutor reads the register offsets)
foreach h [glob -nocomplain $here/sf_hls/solution1/impl/misc/drivers/*/src/xsf_top_hw.h] { file copy -force $h $here/overlay/xsf_top_hw.h }
puts "spikeforge: overlay written to $here/overlay/net.bit (+ net.hwh)"
