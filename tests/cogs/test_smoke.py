from tests.conftest import World


async def test_say_attaches_audio(running: World) -> None:
    interaction = await running.say(text="Hello there, world.")
    final = await interaction.wait_final()
    print(final)
    print(interaction.content, interaction.files()[0][0] if interaction.files() else None)
    assert interaction.files()
