"""Classic Fermi GBM position VOEvents (XML)."""

from __future__ import annotations

from datetime import datetime, timedelta

from devtools.simulator.common import fermi_ids, galactic, iso_time, julian_date, random_sky, trigger_second
from devtools.simulator.packet import State


def fermi_voevent(
    st: State,
    t: datetime,
    err: float,
    *,
    role: str = "observation",
    noise: bool = False,
) -> str:
    rng = st.rng
    u = rng.uniform
    trigger = trigger_second(st, t)
    sent = trigger + timedelta(seconds=u(8.0, 600.0))
    trigid, bn = fermi_ids(trigger)
    ra, dec = random_sky(rng, -90.0, 90.0)
    gl, gb = galactic(ra, dec)
    seq = rng.randint(1, 99)
    serial = st.next_serial()
    iso = iso_time(trigger, 2, z=False)
    ivorn = f"ivo://nasa.gsfc.gcn/Fermi#GBM_Flt_Pos_{iso}_{trigid}_{seq}-{serial}"
    tjd = int(julian_date(trigger) - 2440000.5)
    sod = trigger.hour * 3600 + trigger.minute * 60 + trigger.second + trigger.microsecond / 1e6
    ml_index, ml_prob = (2, rng.randint(80, 100)) if noise else (4, rng.randint(70, 99))
    sec_index = rng.choice((0, 5, 6, 9, 11, 19))
    def_not_grb = "true" if noise else "false"
    url = (
        f"http://heasarc.gsfc.nasa.gov/FTP/fermi/data/gbm/triggers/{trigger:%Y}/{bn}/quicklook/glg_lc_medres34_{bn}.gif"
    )
    return f"""<VOEvent xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
ivorn="{ivorn}" role="{role}" \
version="2.0" xsi:schemaLocation="http://www.ivoa.net/xml/VOEvent/v2.0  \
http://www.ivoa.net/xml/VOEvent/VOEvent-v2.0.xsd">
  <Who>
    <AuthorIVORN>ivo://nasa.gsfc.tan/gcn</AuthorIVORN>
    <Author>
      <shortName>Fermi (via VO-GCN)</shortName>
      <contactName>Julie McEnery</contactName>
      <contactPhone>+1-301-286-1632</contactPhone>
      <contactEmail>Julie.E.McEnery@nasa.gov</contactEmail>
    </Author>
    <Date>{iso_time(sent, 0, z=False)}</Date>
    <Description>This VOEvent message was created with GCN VOE version: 15.08 17jun22\
</Description>
  </Who>
  <What>
    <Param name="Packet_Type" value="111"/>
    <Param name="Pkt_Ser_Num" value="{serial}"/>
    <Param name="TrigID" value="{trigid}" ucd="meta.id"/>
    <Param name="Sequence_Num" value="{seq}" ucd="meta.id.part"/>
    <Param name="Burst_TJD" value="{tjd}" unit="days" ucd="time"/>
    <Param name="Burst_SOD" value="{sod:.2f}" unit="sec" ucd="time"/>
    <Param name="Burst_Inten" value="{rng.randint(50, 3000)}" unit="cts" ucd="phot.count"/>
    <Param name="Trig_Timescale" value="2.048" unit="sec" ucd="time.interval"/>
    <Param name="Data_Timescale" value="2.048" unit="sec" ucd="time.interval"/>
    <Param name="Data_Signif" value="{u(4.5, 40.0):.2f}" unit="sigma" ucd="stat.snr"/>
    <Param name="Phi" value="{u(0, 360):.2f}" unit="deg" ucd="pos.az.azi"/>
    <Param name="Theta" value="{u(0, 180):.2f}" unit="deg" ucd="pos.az.zd"/>
    <Param name="SC_Long" value="{u(0, 360):.2f}" unit="deg" ucd="pos.earth.lon"/>
    <Param name="SC_Lat" value="{u(-25.6, 25.6):.2f}" unit="deg" ucd="pos.earth.lat"/>
    <Param name="Algorithm" value="3" unit="dn"/>
    <Param name="Most_Likely_Index" value="{ml_index}" unit="dn"/>
    <Param name="Most_Likely_Prob" value="{ml_prob}"/>
    <Param name="Sec_Most_Likely_Index" value="{sec_index}" unit="dn"/>
    <Param name="Sec_Most_Likely_Prob" value="{100 - ml_prob}"/>
    <Param name="Hardness_Ratio" value="{u(0.3, 2.5):.2f}" ucd="arith.ratio"/>
    <Param name="Trigger_ID" value="{"0x00000001" if noise else "0x00000000"}"/>
    <Param name="Misc_flags" value="0x01000000"/>
    <Group name="Trigger_ID">
      <Param name="Def_NOT_a_GRB" value="{def_not_grb}"/>
      <Param name="Target_in_Blk_Catalog" value="false"/>
      <Param name="Spatial_Prox_Match" value="false"/>
      <Param name="Temporal_Prox_Match" value="false"/>
      <Param name="Test_Submission" value="{"true" if role == "test" else "false"}"/>
    </Group>
    <Group name="Misc_Flags">
      <Param name="Values_Out_of_Range" value="false"/>
      <Param name="Delayed_Transmission" value="false"/>
      <Param name="Flt_Generated" value="true"/>
      <Param name="Gnd_Generated" value="false"/>
    </Group>
    <Param name="LightCurve_URL" value="{url}" ucd="meta.ref.url"/>
    <Param name="Coords_Type" value="1" unit="dn"/>
    <Param name="Coords_String" value="source_object"/>
    <Group name="Obs_Support_Info">
      <Description>The Sun and Moon values are valid at the time the VOEvent XML message \
was created.</Description>
      <Param name="Sun_Distance" value="{u(10, 170):.2f}" unit="deg" ucd="pos.angDistance"/>
      <Param name="MOON_Distance" value="{u(5, 175):.2f}" unit="deg" ucd="pos.angDistance"/>
      <Param name="Moon_Illum" value="{u(0, 100):.2f}" unit="%" ucd="arith.ratio"/>
      <Param name="Galactic_Long" value="{gl:.2f}" unit="deg" ucd="pos.galactic.lon"/>
      <Param name="Galactic_Lat" value="{gb:.2f}" unit="deg" ucd="pos.galactic.lat"/>
    </Group>
    <Description>The Fermi-GBM location of a transient.</Description>
  </What>
  <WhereWhen>
    <ObsDataLocation>
      <ObservatoryLocation id="GEOLUN"/>
      <ObservationLocation>
        <AstroCoordSystem id="UTC-FK5-GEO"/>
        <AstroCoords coord_system_id="UTC-FK5-GEO">
          <Time unit="s">
            <TimeInstant>
              <ISOTime>{iso}</ISOTime>
            </TimeInstant>
          </Time>
          <Position2D unit="deg">
            <Name1>RA</Name1>
            <Name2>Dec</Name2>
            <Value2>
              <C1>{ra:.4f}</C1>
              <C2>{dec:.4f}</C2>
            </Value2>
            <Error2Radius>{err:.4f}</Error2Radius>
          </Position2D>
        </AstroCoords>
      </ObservationLocation>
    </ObsDataLocation>
    <Description>The RA,Dec coordinates are of the type: source_object.</Description>
  </WhereWhen>
  <How>
    <Description>Fermi Satellite, GBM Instrument</Description>
    <Reference uri="http://gcn.gsfc.nasa.gov/fermi.html" type="url"/>
  </How>
  <Why importance="{0.1 if noise else 0.5}">
    <Inference probability="{0.1 if noise else 0.5}">
      <Concept>process.variation.burst;em.gamma</Concept>
    </Inference>
  </Why>
  <Citations>
    <EventIVORN cite="followup">ivo://nasa.gsfc.gcn/Fermi#GBM_Alert_{iso}_{trigid}_1-{serial}\
</EventIVORN>
    <Description>This is an updated position to the original trigger.</Description>
  </Citations>
</VOEvent>
"""
