.npuc 1
.contents insns=35 data=564 sha256=41707ff828f296a80500bfe31262496f093ff740795eae1f309669040f1cd2b8
.hw rows=16 cols=16 dataflow="ws" fold_overlap=true int4_pack=2 act16_passes=2 spad_kib=256 acc_kib=64 dram_bw=16 dram_latency=100 vec_lanes=16 vec_latency=4 lanes=0 taps=9 clock_mhz=1000.0 weight_granularity="per_channel" act_mode="asymmetric" scale_rule="pow2" rounding="half_even" zero_point="even" acc_bits=32 mac_pj=0.3 spad_read_pj=2.5 spad_write_pj=2.5 acc_read_pj=2.5 acc_write_pj=2.5 dram_pj=160.0 vector_pj=3.1 pe_mm2=0.0012 spad_mm2_per_kib=0.0039 acc_mm2_per_kib=0.0049
.dram 1216
.tensor name="x" role=input addr=0x0 shape=1,3,6,6 layout=nhwc scale=0.03125 zp=-38
.tensor name="y" role=output addr=0x300 shape=1,5 layout=flat scale=0.015625 zp=6
.layer 0 "conv" macs=5832 bytes=486
.layer 1 "pool"
.layer 2 "fc" macs=270 bytes=329
.data 0x00000180 00e4f6f0f74af0fec3ffd4e0cfb1e8989300e9b222f61bf803fa2e3605f8fadf230827b902d70ae902e412c1d7be9adc04c3f3e007de08fe2312f5fd0d2de222
.data 0x000001c0 32bfdf2cfbf02bedf4e84ac7cbcee8063b00e231e066ef73d5d72236e83ccafdde042112c6effb044e0bb1caf906fdfa24f209e2f6ef0a40d10640d2a7f1e7ce
.data 0x00000200 ddfffc38ff03bc1efa010727edd52855f3d707210dd7f4469aaa13e3c01eea194011
.data 0x00000240 fad4ffffcbe8fffffffdffff76ecffff7dc8ffff66e1ffff01000000010000000100000001000000010000000100000006000000070000000700000007000000
.data 0x00000280 0700000007000000
.data 0x00000340 ffc40ef729ede30c38cb2bef1823f21db8ebff164502f2b906b3281553ef0312a0f9270b0d00091d191b04de261e89e9083136fef8ccc309d23808fee4fe09da
.data 0x00000380 28ff0c3814f90efd08e10822ed3bfdf2d601f81ff202fbf5e3ec110ffe0ceff04aec4708eb03f7eed4ef311312f5c21d041a24f700ead5e2ecdc03d213edcdf2
.data 0x000003c0 f925cdf5f90bde37020244d71e14c6fbd201d007fef5fbe8d9d8fb1720beeac1232a02f81dd2d5f3165ddb08f7c127e13f00fadad7dbf62ff2f5fd39cfe323ff
.data 0x00000400 37081120ded702fa00dae1f20cc935dcd6d1d4e0f9dff4faff230206fbb0140bbb1229fec23a1f1320e7dafaef1104fe31072b28d001cb22360e14e7fef53120
.data 0x00000440 06200ee8c4e7e417eedc1c4ad620
.data 0x00000480 36d6ffff865bffffd72e0000bfb8ffff76c5ffff01000000010000000100000001000000010000000800000008000000080000000800000008000000

@layer 0  ; conv
lda   dst=0 src=576 n0=1 n1=18 ss0=0 ds0=0
ld    dst=192 src=0 n0=2 n1=6 n2=3 ss0=18 ss1=3 ds0=3 ds1=9 pt=1 pb=0 pl=1 pr=1 fill=-38
ld    dst=264 src=0 n0=3 n1=6 n2=3 ss0=18 ss1=3 ds0=3 ds1=9 pt=0 pb=0 pl=1 pr=1 fill=-38
ld    dst=336 src=18 n0=3 n1=6 n2=3 ss0=18 ss1=3 ds0=3 ds1=9 pt=0 pb=0 pl=1 pr=1 fill=-38
ld    dst=408 src=36 n0=3 n1=6 n2=3 ss0=18 ss1=3 ds0=3 ds1=9 pt=0 pb=0 pl=1 pr=1 fill=-38 signal=5
ld    dst=480 src=54 n0=3 n1=6 n2=3 ss0=18 ss1=3 ds0=3 ds1=9 pt=0 pb=0 pl=1 pr=1 fill=-38
ld    dst=552 src=72 n0=2 n1=6 n2=3 ss0=18 ss1=3 ds0=3 ds1=9 pt=0 pb=1 pl=1 pr=1 fill=-38
ld    dst=0 src=384 n0=1 n1=1 n2=162 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
gemm  dst=48 a=192 w=0 m0=6 m1=6 k=16 n=6 as0=9 as1=72 ws=6 ds0=6 ds1=36 acc=2 bias=0 w4=0 a16=0 wait=0
gemm  dst=48 a=208 w=96 m0=6 m1=6 k=11 n=6 as0=9 as1=72 ws=6 ds0=6 ds1=36 acc=1 bias=0 w4=0 a16=0
vrq   dst=1088 src=48 mul=6 sh=12 m=36 n=6 ds=6 ss=6 zp=-128 lo=-128 hi=127 rnd=0 signal=1,2
st    dst=128 src=1088 n0=6 n1=6 n2=6 ds0=36 ds1=6 ss0=36 ss1=6 wait=2 signal=4

@layer 1  ; pool
ld    dst=131072 src=128 n0=6 n1=6 n2=6 ss0=36 ss1=6 ds0=36 ds1=6 pt=0 pb=0 pl=0 pr=0 fill=-128 wait=4 signal=0
vmax  dst=131520 a=131072 b=131072 m=3 n=6 ds=6 as=12 bs=12 wait=0
vmax  dst=131520 a=131520 b=131078 m=3 n=6 ds=6 as=6 bs=12
vmax  dst=131520 a=131520 b=131108 m=3 n=6 ds=6 as=6 bs=12
vmax  dst=131520 a=131520 b=131114 m=3 n=6 ds=6 as=6 bs=12
vmax  dst=131538 a=131144 b=131144 m=3 n=6 ds=6 as=12 bs=12
vmax  dst=131538 a=131538 b=131150 m=3 n=6 ds=6 as=6 bs=12
vmax  dst=131538 a=131538 b=131180 m=3 n=6 ds=6 as=6 bs=12
vmax  dst=131538 a=131538 b=131186 m=3 n=6 ds=6 as=6 bs=12
vmax  dst=131556 a=131216 b=131216 m=3 n=6 ds=6 as=12 bs=12
vmax  dst=131556 a=131556 b=131222 m=3 n=6 ds=6 as=6 bs=12
vmax  dst=131556 a=131556 b=131252 m=3 n=6 ds=6 as=6 bs=12
vmax  dst=131556 a=131556 b=131258 m=3 n=6 ds=6 as=6 bs=12 signal=2
st    dst=704 src=131520 n0=3 n1=3 n2=6 ds0=18 ds1=6 ss0=18 ss1=6 wait=2 signal=4

@layer 2  ; fc
lda   dst=0 src=1152 n0=1 n1=15 ss0=0 ds0=0 wait=1
ld    dst=288 src=704 n0=1 n1=1 n2=54 ss0=54 ss1=54 ds0=54 ds1=54 pt=0 pb=0 pl=0 pr=0 fill=-128 wait=4
ld    dst=0 src=832 n0=1 n1=1 n2=270 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
gemm  dst=32 a=288 w=0 m0=1 m1=1 k=16 n=5 as0=54 as1=54 ws=5 ds0=5 ds1=5 acc=2 bias=0 w4=0 a16=0 wait=0
gemm  dst=32 a=304 w=80 m0=1 m1=1 k=16 n=5 as0=54 as1=54 ws=5 ds0=5 ds1=5 acc=1 bias=0 w4=0 a16=0
gemm  dst=32 a=320 w=160 m0=1 m1=1 k=16 n=5 as0=54 as1=54 ws=5 ds0=5 ds1=5 acc=1 bias=0 w4=0 a16=0
gemm  dst=32 a=336 w=240 m0=1 m1=1 k=6 n=5 as0=54 as1=54 ws=5 ds0=5 ds1=5 acc=1 bias=0 w4=0 a16=0
vrq   dst=416 src=32 mul=5 sh=10 m=1 n=5 ds=5 ss=5 zp=6 lo=-128 hi=127 rnd=0 signal=2
st    dst=768 src=416 n0=1 n1=1 n2=5 ds0=5 ds1=5 ss0=5 ss1=5 wait=2,5
