.npuc 1
.contents insns=39 data=1116 sha256=b4ee861e1f04bca43e017df915e9a1f6a8192463daeee5a419c8afc9aa7cf0e2
.hw rows=16 cols=16 dataflow="os" fold_overlap=true int4_pack=2 act16_passes=2 spad_kib=256 acc_kib=64 dram_bw=16 dram_latency=100 vec_lanes=16 vec_latency=4 lanes=16 taps=9 clock_mhz=1000.0 weight_granularity="per_channel" act_mode="asymmetric" scale_rule="pow2" rounding="half_even" zero_point="even" acc_bits=32 mac_pj=0.3 spad_read_pj=2.5 spad_write_pj=2.5 acc_read_pj=2.5 acc_write_pj=2.5 dram_pj=160.0 vector_pj=3.1 pe_mm2=0.0012 spad_mm2_per_kib=0.0039 acc_mm2_per_kib=0.0049
.dram 2752
.tensor name="x" role=input addr=0x0 shape=1,3,8,8 layout=nhwc scale=0.03125 zp=-22
.tensor name="y" role=output addr=0x840 shape=1,5 layout=flat scale=0.015625 zp=-42
.layer 0 "expand" macs=2304 bytes=996
.layer 1 "dw" macs=1728 bytes=1068
.layer 2 "project" macs=1152 bytes=360
.layer 3 "fc" macs=480 bytes=581
.data 0x000003c0 43054456dbee7c0f185d4fc48e6101406af2ef486d9311e7231cedcb68bd6339ba19e54e
.data 0x00000400 aeffffffc10a00004d0300007e0a00003a0a000011f7ffff87100000f80c0000cb050000830100005e06000050feffff01000000010000000100000001000000
.data 0x00000440 01000000010000000100000001000000010000000100000001000000010000000600000007000000060000000800000008000000060000000700000006000000
.data 0x00000480 07000000070000000700000007000000
.data 0x00000580 2e46191e24f7c01ed4f1140579f18e03ea10f40beea2c5d0fdf2d705d43bdafa6b6f101836e7d2e3f8c7d961fb275504f51acc00cdf156b02405f4cb58e5ef13
.data 0x000005c0 f1f9d3c214f7222739e44eae460c0aa1ffde02254b1ff3bb0642e172e2292fb41e32e12e321d25e7f2f82ef6
.data 0x00000600 d9ed00004f230000a896ffff85ddffff450a0000092b0000f3ccffff23f3ffffeb190000901300000756000093dcffff01000000010000000100000001000000
.data 0x00000640 01000000010000000100000001000000010000000100000001000000010000000800000007000000070000000700000007000000070000000700000008000000
.data 0x00000680 07000000070000000700000008000000
.data 0x00000740 d31bd7fa08ac093df0eb25f3110933f7cd7e10d0d8e4234100ada143f8b9062faba90e22d615cf053a300a1f1edb2a0524f4031a49f9220de4f7ad0a6146d10e
.data 0x00000780 dd91280cfc142409
.data 0x000007c0 74570000a14a00003060ffff12defffffb3f0000a306000001000000010000000100000001000000010000000100000007000000070000000700000007000000
.data 0x00000800 0700000008000000
.data 0x00000880 ff0720f613e2e4f0ec3f00f721f4c418cb2f35dae6f5fdfe4716e01eff171308f3ff36281bf9d0f8faa82304232d01ff2fe913e107ed4109f7d40cc3f86025ec
.data 0x000008c0 ff280508ee27e9ce1504550be806204c22a32c01b12335f4f51ff9e8f720dd015beff13b0cf4fa05cbf0c7e4152cf9fe490604c128f90617025421f802d6f8fa
.data 0x00000900 0b12fa3202153b0bf8ccfa0e130700154109dddd39fefe120ee7663706f923fddfe4080ab3ccc2f5e01fd9edf513f0f7fbfc261b1e3df10521c8f0e51edf03da
.data 0x00000940 0cfb0701720201b3f2f8d10909bc621519f5c2d0e703f1073cf015e9fdef10f396f416f7f40419c149efddee47ff10eff8d2fd121ffd2ef3f501024228d318ff
.data 0x00000980 cbdd16a6d271e308befe2edaf3f7cbf0f9eaf605220604e8d17eb3f5000ce01104dcf3e617f403150109fdb6f22f19ee9ee0bfe1ff13eaaff21e06015b02f112
.data 0x000009c0 e8ca0de5e7053217f9f60609ee0a0df4b103259a0af212063fdae7000c121ee12318f4f2150e0122ff27d93b371a0ee6efcb16eaf7ef1ef624ec4d231ef7eaef
.data 0x00000a00 b00be41503a41911000c3cf126ebf2fe073dfcfafdeb1e2be906f027d6e1bffdccd5eb1c073632dcfdda4de327db021727ead4ff39271e0003810403f4ef1c0c
.data 0x00000a40 2ad7b70a2b04b6fda2690fe3115105080109210810febc1b0bcee4e51410e5e5
.data 0x00000a80 d4a1ffff3a620000c52e00004331000045bcffff01000000010000000100000001000000010000000700000008000000070000000700000008000000

@layer 0  ; expand
lda   dst=0 src=1024 n0=1 n1=36 ss0=0 ds0=0
ld    dst=64 src=0 n0=8 n1=8 n2=3 ss0=24 ss1=3 ds0=24 ds1=3 pt=0 pb=0 pl=0 pr=0 fill=-22
ld    dst=0 src=960 n0=1 n1=1 n2=36 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
gemm  dst=80 a=64 w=0 m0=8 m1=2 k=3 n=12 as0=3 as1=24 ws=12 ds0=12 ds1=96 acc=2 bias=0 w4=0 a16=0 wait=0
gemm  dst=272 a=112 w=0 m0=8 m1=2 k=3 n=12 as0=3 as1=24 ws=12 ds0=12 ds1=96 acc=2 bias=0 w4=0 a16=0
gemm  dst=464 a=160 w=0 m0=8 m1=2 k=3 n=12 as0=3 as1=24 ws=12 ds0=12 ds1=96 acc=2 bias=0 w4=0 a16=0
gemm  dst=656 a=208 w=0 m0=8 m1=2 k=3 n=12 as0=3 as1=24 ws=12 ds0=12 ds1=96 acc=2 bias=0 w4=0 a16=0
ld    dst=261152 src=0 n0=0 n1=0 n2=12 ss0=0 ss1=0 ds0=108 ds1=12 pt=1 pb=0 pl=9 pr=0 fill=-128
ld    dst=261260 src=0 n0=0 n1=0 n2=12 ss0=0 ss1=0 ds0=108 ds1=12 pt=8 pb=0 pl=1 pr=0 fill=-128 signal=0
vrq   dst=261272 src=80 mul=12 sh=24 m=8 n=12 ds=12 ss=12 zp=-128 lo=-128 hi=64 rnd=0 wait=0
vrq   dst=261380 src=176 mul=12 sh=24 m=8 n=12 ds=12 ss=12 zp=-128 lo=-128 hi=64 rnd=0
vrq   dst=261488 src=272 mul=12 sh=24 m=8 n=12 ds=12 ss=12 zp=-128 lo=-128 hi=64 rnd=0
vrq   dst=261596 src=368 mul=12 sh=24 m=8 n=12 ds=12 ss=12 zp=-128 lo=-128 hi=64 rnd=0
vrq   dst=261704 src=464 mul=12 sh=24 m=8 n=12 ds=12 ss=12 zp=-128 lo=-128 hi=64 rnd=0
vrq   dst=261812 src=560 mul=12 sh=24 m=8 n=12 ds=12 ss=12 zp=-128 lo=-128 hi=64 rnd=0
vrq   dst=261920 src=656 mul=12 sh=24 m=8 n=12 ds=12 ss=12 zp=-128 lo=-128 hi=64 rnd=0
vrq   dst=262028 src=752 mul=12 sh=24 m=8 n=12 ds=12 ss=12 zp=-128 lo=-128 hi=64 rnd=0 signal=1

@layer 1  ; dw
ld    dst=131072 src=1408 n0=1 n1=1 n2=108 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0
lda   dst=8192 src=1536 n0=1 n1=36 ss0=0 ds0=0 signal=0
dwc   dst=131200 a=261152 w=131072 m0=4 m1=1 c=12 kh=3 kw=3 as0=24 as1=216 ts0=12 ts1=108 ds=12 par=8192 zp=-128 lo=-128 hi=64 rnd=0 wait=0 signal=2
st    dst=1216 src=131200 n0=1 n1=4 n2=12 ds0=48 ds1=12 ss0=48 ss1=12 wait=2 signal=3
dwc   dst=131264 a=261368 w=131072 m0=4 m1=1 c=12 kh=3 kw=3 as0=24 as1=216 ts0=12 ts1=108 ds=12 par=8192 zp=-128 lo=-128 hi=64 rnd=0 signal=2
st    dst=1264 src=131264 n0=1 n1=4 n2=12 ds0=48 ds1=12 ss0=48 ss1=12 wait=2 signal=3
dwc   dst=131200 a=261584 w=131072 m0=4 m1=1 c=12 kh=3 kw=3 as0=24 as1=216 ts0=12 ts1=108 ds=12 par=8192 zp=-128 lo=-128 hi=64 rnd=0 wait=3 signal=2
st    dst=1312 src=131200 n0=1 n1=4 n2=12 ds0=48 ds1=12 ss0=48 ss1=12 wait=2
dwc   dst=131264 a=261800 w=131072 m0=4 m1=1 c=12 kh=3 kw=3 as0=24 as1=216 ts0=12 ts1=108 ds=12 par=8192 zp=-128 lo=-128 hi=64 rnd=0 wait=3 signal=1,2
st    dst=1360 src=131264 n0=1 n1=4 n2=12 ds0=48 ds1=12 ss0=48 ss1=12 wait=2 signal=4

@layer 2  ; project
lda   dst=0 src=1984 n0=1 n1=18 ss0=0 ds0=0 wait=1
ld    dst=96 src=1216 n0=4 n1=4 n2=12 ss0=48 ss1=12 ds0=48 ds1=12 pt=0 pb=0 pl=0 pr=0 fill=-128 wait=4
ld    dst=0 src=1856 n0=1 n1=1 n2=72 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
gemm  dst=48 a=96 w=0 m0=4 m1=4 k=12 n=6 as0=12 as1=48 ws=6 ds0=6 ds1=24 acc=2 bias=0 w4=0 a16=0 wait=0
vrq   dst=480 src=48 mul=6 sh=12 m=16 n=6 ds=6 ss=6 zp=-48 lo=-128 hi=127 rnd=0 signal=2
st    dst=1728 src=480 n0=4 n1=4 n2=6 ds0=24 ds1=6 ss0=24 ss1=6 wait=2 signal=4

@layer 3  ; fc
lda   dst=8192 src=2688 n0=1 n1=15 ss0=0 ds0=0 wait=1
ld    dst=131552 src=1728 n0=1 n1=1 n2=96 ss0=96 ss1=96 ds0=96 ds1=96 pt=0 pb=0 pl=0 pr=0 fill=-48 wait=4
ld    dst=131072 src=2176 n0=1 n1=1 n2=480 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
gemm  dst=8224 a=131552 w=131072 m0=1 m1=1 k=96 n=5 as0=96 as1=96 ws=5 ds0=5 ds1=5 acc=2 bias=8192 w4=0 a16=0 wait=0
vrq   dst=131744 src=8224 mul=8197 sh=8202 m=1 n=5 ds=5 ss=5 zp=-42 lo=-128 hi=127 rnd=0 signal=2
st    dst=2112 src=131744 n0=1 n1=1 n2=5 ds0=5 ds1=5 ss0=5 ss1=5 wait=2
